"""Validator for the evaluation sets: evals/golden.jsonl (the training side, tuned on) and
evals/heldout.jsonl (the held-out split, never tuned on).

Fast and model-free: reads the JSONL and the corpus through corpus/catalog.toml and checks
schema, verbatim evidence, refusal conventions, follow-up histories, coverage and answer
self-consistency.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "evals" / "golden.jsonl"
HELDOUT = ROOT / "evals" / "heldout.jsonl"
DEV = ROOT / "evals" / "dev.jsonl"
CATALOG = ROOT / "corpus" / "catalog.toml"

KINDS = {"fact", "number", "table", "list", "cross_doc", "temporal", "swedish_source", "followup", "unanswerable"}
LANGS = {"en", "sv"}
REQUIRED = {"id", "question", "lang", "kind", "doc", "evidence", "answer", "must_include"}
ID_RE = re.compile(r"^(d\d{2}|g\d{3}|h\d{3})$")
SWEDISH_SEED = "002_3ab026975db1dfa2.txt"


def norm(text: str) -> str:
    """The scorer's normalisation: collapse all whitespace, lowercase."""
    return re.sub(r"\s+", " ", text).strip().lower()


def _load_jsonl(path: Path) -> list[dict]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:  # pragma: no cover - reported as failure
            raise AssertionError(f"{path.name}:{lineno}: invalid JSON: {exc}") from exc
        assert isinstance(obj, dict), f"{path.name}:{lineno}: not a JSON object"
        rows.append(obj)
    return rows


GOLDEN_ROWS = _load_jsonl(GOLDEN)
HELDOUT_ROWS = _load_jsonl(HELDOUT)
ROWS = GOLDEN_ROWS + HELDOUT_ROWS
CATALOG_DOCS = tomllib.loads(CATALOG.read_text(encoding="utf-8"))["documents"]
SEED_TO_FILE = {d["seed"]: d["file"] for d in CATALOG_DOCS}
_TEXTS: dict[str, str] = {}


def doc_text(seed: str) -> str:
    if seed not in _TEXTS:
        _TEXTS[seed] = norm((ROOT / "corpus" / SEED_TO_FILE[seed]).read_text(encoding="utf-8"))
    return _TEXTS[seed]


def docs_of(row: dict) -> list[str]:
    doc = row.get("doc")
    if doc is None:
        return []
    return list(doc) if isinstance(doc, list) else [doc]


def groups_of(row: dict) -> list[list[str]]:
    """must_include groups; a bare string is a one-option group (as in dev.jsonl)."""
    return [[g] if isinstance(g, str) else list(g) for g in row["must_include"]]


def _ids(rows):
    return [str(r.get("id")) for r in rows]


ANSWERABLE = [r for r in ROWS if r.get("kind") != "unanswerable"]
UNANSWERABLE = [r for r in ROWS if r.get("kind") == "unanswerable"]


# ---------------------------------------------------------------- schema


def test_catalog_files_exist():
    assert SEED_TO_FILE, "catalog has no documents"
    for seed, file in SEED_TO_FILE.items():
        assert (ROOT / "corpus" / file).is_file(), f"{seed} -> {file} missing"


@pytest.mark.parametrize("row", ROWS, ids=_ids(ROWS))
def test_schema(row):
    missing = REQUIRED - row.keys()
    assert not missing, f"missing fields {missing}"
    assert isinstance(row["id"], str) and ID_RE.match(row["id"]), f"bad id {row['id']!r}"
    assert isinstance(row["question"], str) and row["question"].strip()
    assert isinstance(row["answer"], str) and row["answer"].strip()
    assert row["lang"] in LANGS, f"bad lang {row['lang']!r}"
    assert row["kind"] in KINDS, f"bad kind {row['kind']!r}"
    assert isinstance(row["evidence"], list)
    assert all(isinstance(e, str) and e.strip() for e in row["evidence"])
    assert isinstance(row["must_include"], list)
    for group in row["must_include"]:
        opts = [group] if isinstance(group, str) else group
        assert isinstance(opts, list) and opts, "empty must_include group"
        assert all(isinstance(o, str) and o.strip() for o in opts), f"bad option in {group!r}"
    for seed in docs_of(row):
        assert seed in SEED_TO_FILE, f"doc {seed!r} is not a seed name in catalog.toml"
    assert all(isinstance(s, str) and s.strip() for s in row.get("must_not", [])), "blank must_not"
    history = row.get("history", [])
    assert (row["kind"] == "followup") <= bool(history), "a followup case needs its history"
    roles = [t["role"] for t in history]
    assert roles == ["user", "assistant"] * (len(roles) // 2), f"history must alternate user/assistant: {roles}"
    assert all(isinstance(t["content"], str) and t["content"].strip() for t in history)


def test_ids_and_questions_unique():
    ids = Counter(r["id"] for r in ROWS)
    assert not [i for i, n in ids.items() if n > 1], "duplicate ids"
    questions = Counter(_key(r) for r in ROWS)
    assert not [q for q, n in questions.items() if n > 1], "duplicate questions"


def _key(r: dict) -> tuple:
    """A follow-up ("And in 2019?") is the same question only after the same history."""
    return norm(r["question"]), tuple(norm(t["content"]) for t in r.get("history", []))


def test_starts_with_dev_set_unchanged():
    dev = _load_jsonl(DEV)
    assert GOLDEN_ROWS[: len(dev)] == dev, "golden.jsonl must start with the dev questions, unchanged"
    assert all(r["id"].startswith("g") for r in GOLDEN_ROWS[len(dev):])
    assert all(r["id"].startswith("h") for r in HELDOUT_ROWS), "held-out ids start with h"


# ---------------------------------------------------------------- doc / refusal conventions


@pytest.mark.parametrize("row", UNANSWERABLE, ids=_ids(UNANSWERABLE))
def test_unanswerable_conventions(row):
    assert row["doc"] is None
    assert row["evidence"] == []
    assert row["must_include"] == []


@pytest.mark.parametrize("row", ANSWERABLE, ids=_ids(ANSWERABLE))
def test_answerable_conventions(row):
    assert row["doc"] is not None, "answerable question without doc"
    assert row["evidence"], "answerable question without evidence"
    assert row["must_include"], "answerable question without must_include"
    if row["kind"] == "cross_doc":
        assert isinstance(row["doc"], list) and len(set(row["doc"])) >= 2, "cross_doc needs >= 2 docs"
    elif row["kind"] not in ("temporal", "followup"):
        assert isinstance(row["doc"], str), f"{row['kind']} question should name one doc"


# ---------------------------------------------------------------- evidence is verbatim


@pytest.mark.parametrize("row", ANSWERABLE, ids=_ids(ANSWERABLE))
def test_evidence_verbatim_in_document(row):
    docs = docs_of(row)
    for ev in row["evidence"]:
        needle = norm(ev)
        assert any(needle in doc_text(d) for d in docs), f"evidence not found verbatim in {docs}: {ev!r}"


@pytest.mark.parametrize("row", [r for r in ANSWERABLE if isinstance(r["doc"], list)],
                         ids=_ids([r for r in ANSWERABLE if isinstance(r["doc"], list)]))
def test_every_listed_doc_has_evidence(row):
    for d in docs_of(row):
        assert any(norm(ev) in doc_text(d) for ev in row["evidence"]), f"no evidence string comes from {d}"


# ---------------------------------------------------------------- answer self-consistency


@pytest.mark.parametrize("row", ANSWERABLE, ids=_ids(ANSWERABLE))
def test_answer_satisfies_its_own_must_include(row):
    answer = norm(row["answer"])
    for opts in groups_of(row):
        assert any(norm(o) in answer for o in opts), f"no option of {opts} appears in the answer"
    assert not [s for s in row.get("must_not", []) if norm(s) in answer], "the answer contains its own must_not"


# ---------------------------------------------------------------- coverage


def _sv_about_english(rows):
    return [r for r in rows if r["lang"] == "sv" and r["kind"] != "unanswerable" and SWEDISH_SEED not in docs_of(r)]


def test_training_side_coverage():
    """The training side (golden, which starts with dev) has the held-out split's mix."""
    rows = GOLDEN_ROWS
    assert len(rows) >= 350
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["followup"] >= 30 and kinds["unanswerable"] >= 45
    assert sum(r["kind"] == "swedish_source" and r["lang"] == "en" for r in rows) >= 30
    assert len(_sv_about_english(rows)) >= 15


def test_heldout_coverage():
    rows = HELDOUT_ROWS
    assert len(rows) >= 150
    kinds = Counter(r["kind"] for r in rows)
    assert {"fact", "number", "table", "list", "cross_doc", "temporal"} <= kinds.keys()
    assert sum(bool(r.get("history")) for r in rows) >= 30
    assert sum(r["kind"] == "unanswerable" and bool(r.get("trap")) for r in rows) >= 30
    assert sum(r["kind"] == "swedish_source" and r["lang"] == "en" for r in rows) >= 20
    assert len(_sv_about_english(rows)) >= 15


def test_heldout_is_disjoint_from_the_training_side():
    assert not {_key(r) for r in GOLDEN_ROWS} & {_key(r) for r in HELDOUT_ROWS}


def test_coverage():
    rows = GOLDEN_ROWS
    assert len(rows) >= 100
    kinds = Counter(r["kind"] for r in rows)
    assert KINDS <= kinds.keys(), f"kinds missing: {KINDS - kinds.keys()}"
    assert kinds["unanswerable"] >= 15
    covered = {d for r in rows for d in docs_of(r)}
    assert set(SEED_TO_FILE) <= covered, f"documents without questions: {set(SEED_TO_FILE) - covered}"
    swedish = [r for r in rows if r["kind"] == "swedish_source"]
    assert sum(r["lang"] == "en" for r in swedish) >= 8
    assert sum(r["lang"] == "sv" for r in swedish) >= 6
    assert sum(r["lang"] == "sv" and r["kind"] == "unanswerable" for r in rows) >= 1
    # every document is asked about on its own, not only inside comparisons
    single = Counter(r["doc"] for r in rows if r["kind"] != "unanswerable" and isinstance(r["doc"], str))
    assert all(single[s] >= 5 for s in SEED_TO_FILE), single
