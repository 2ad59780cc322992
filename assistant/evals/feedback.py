"""Draft eval cases from thumbs-down feedback (``assistant eval add-from-feedback``).

The feedback log (``settings.feedback_path``) holds one JSON object a line: the fields of
``records.Feedback`` plus a timestamp. Every ``rating == "down"`` line whose question is not
already a case (in the output file or the golden set, compared after normalisation) becomes a
draft case: kind ``feedback``, ``needs_review: true``, ``answer`` = the answer the assistant
gave, empty ``must_include``/``evidence``/``doc``. The runner skips drafts; a person completes
them (correct answer, must_include, doc, evidence, a real kind) and removes ``needs_review``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from assistant.evals.cases import CaseError, read_jsonl
from assistant.evals.metrics import norm
from assistant.lexical import looks_swedish
from assistant.records import Feedback

def _lang(text: str) -> str:
    return "sv" if looks_swedish(text) else "en"


def _case_id(question: str) -> str:
    return "fb-" + hashlib.sha1(norm(question).encode()).hexdigest()[:8]


def existing_questions(paths: list[Path]) -> set[str]:
    out = set()
    for p in paths:
        if Path(p).exists():
            for _, obj in read_jsonl(p):
                if isinstance(obj.get("question"), str):
                    out.add(norm(obj["question"]))
    return out


def drafts_from_feedback(feedback_path: Path, known_questions: set[str]) -> tuple[list[dict], dict]:
    """(new draft cases, counts) from the feedback log; ``known_questions`` are normalised."""
    counts = {"lines": 0, "down": 0, "duplicates": 0, "invalid": 0}
    drafts: list[dict] = []
    seen = set(known_questions)
    path = Path(feedback_path)
    if not path.exists():
        raise CaseError(f"{path}: no feedback file (nothing has been rated yet?)")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        counts["lines"] += 1
        try:
            obj = json.loads(line)
            fb = Feedback.model_validate({k: obj.get(k) for k in ("question", "answer", "rating", "comment") if k in obj})
        except (json.JSONDecodeError, ValidationError, AttributeError):
            counts["invalid"] += 1
            continue
        if fb.rating != "down":
            continue
        counts["down"] += 1
        key = norm(fb.question)
        if key in seen:
            counts["duplicates"] += 1
            continue
        seen.add(key)
        draft = {
            "id": _case_id(fb.question),
            "question": fb.question,
            "lang": _lang(fb.question),
            "kind": "feedback",
            "doc": None,
            "evidence": [],
            "answer": fb.answer,
            "must_include": [],
            "needs_review": True,
            "feedback_comment": fb.comment,
            "feedback_timestamp": obj.get("timestamp") or obj.get("ts"),
            "feedback_line": n,
        }
        drafts.append(draft)
    return drafts, counts


def add_from_feedback(feedback_path: Path, out_path: Path, also_known: list[Path] = ()) -> tuple[list[dict], dict]:
    """Append new drafts to ``out_path``; duplicates of its cases or of ``also_known`` are skipped."""
    out_path = Path(out_path)
    known = existing_questions([out_path, *also_known])
    drafts, counts = drafts_from_feedback(feedback_path, known)
    if drafts:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        prefix = ""
        if out_path.exists() and out_path.stat().st_size and not out_path.read_bytes().endswith(b"\n"):
            prefix = "\n"
        with out_path.open("a", encoding="utf-8") as f:
            f.write(prefix + "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drafts))
    return drafts, counts
