"""Eval cases: one JSON object a line, the format of ``evals/dev.jsonl``.

Fields: ``id``, ``question``, ``lang``, ``kind``, ``doc`` (seed file name(s) of the gold
document(s), null when unanswerable), ``evidence`` (verbatim substrings of the gold document),
``answer`` (a short correct answer), ``must_include`` (groups of acceptable strings; a group
may be a plain string). Optional: ``history`` (the earlier turns of the conversation, as
``/v1/ask`` takes them: the question is asked as a follow-up), ``must_not`` (strings whose presence
makes an answer wrong: the neighbouring year's figure, another donor's row), ``trap`` (for an
unanswerable case: what is off, e.g. ``year``), ``needs_review`` (a draft, e.g. made from
feedback: loaded, validated loosely, and skipped by the runner) and any extra notes.

``doc`` may name a document by its seed file name, its corpus file name or its id; the
catalog (``corpus/catalog.toml``) maps all three to the document id used in passages.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.catalog import CatalogError, read_catalog
from assistant.evals.metrics import UNANSWERABLE
from assistant.records import Turn


class CaseError(ValueError):
    """A case file that cannot be used; the message names the file and line."""


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    lang: str = "en"
    kind: str = Field(min_length=1)
    doc: str | list[str] | None = None
    evidence: list[str] = Field(default_factory=list)
    answer: str = ""
    must_include: list[str | list[str]] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)
    history: list[Turn] = Field(default_factory=list)
    trap: str | None = None
    needs_review: bool = False

    @field_validator("must_include")
    @classmethod
    def _groups_not_empty(cls, v: list[str | list[str]]) -> list[str | list[str]]:
        for g in v:
            if (isinstance(g, str) and not g.strip()) or (isinstance(g, list) and not any(s.strip() for s in g)):
                raise ValueError("a must_include group is empty")
        return v

    @field_validator("must_not")
    @classmethod
    def _must_not_not_blank(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("a must_not string is blank")
        return v

    @property
    def unanswerable(self) -> bool:
        return self.kind == UNANSWERABLE

    @property
    def docs(self) -> list[str]:
        if self.doc is None:
            return []
        return [self.doc] if isinstance(self.doc, str) else list(self.doc)

    def problems(self) -> list[str]:
        """What makes a non-draft case unusable (beyond field types)."""
        if self.needs_review:
            return []
        if self.unanswerable:
            return ["an unanswerable case must have an empty must_include"] if self.must_include else []
        out = []
        if not self.docs:
            out.append("an answerable case needs `doc`")
        if not self.evidence:
            out.append("an answerable case needs `evidence`")
        if not self.must_include:
            out.append("an answerable case needs `must_include`")
        return out


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; raises CaseError on bad JSON."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CaseError(f"{path}: no such case file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CaseError(f"{path}: cannot read: {e}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaseError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise CaseError(f"{path}:{n}: expected a JSON object")
        out.append((n, obj))
    return out


def load_cases(paths: list[Path], doc_ids: dict[str, str] | None = None) -> list[EvalCase]:
    """Load and validate cases from several files; ids must be unique across all of them.

    With ``doc_ids`` (see :func:`catalog_doc_ids`), every ``doc`` must name a known document.
    """
    cases: list[EvalCase] = []
    seen: dict[str, str] = {}
    for path in paths:
        for n, obj in read_jsonl(path):
            where = f"{path}:{n}"
            try:
                case = EvalCase.model_validate(obj)
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(x) for x in first["loc"]) or "case"
                raise CaseError(f"{where}: {loc}: {first['msg']}") from None
            problems = case.problems()
            if problems:
                raise CaseError(f"{where} ({case.id}): {'; '.join(problems)}")
            if case.id in seen:
                raise CaseError(f"{where}: duplicate id {case.id!r} (first in {seen[case.id]})")
            if doc_ids is not None:
                unknown = [d for d in case.docs if d not in doc_ids]
                if unknown:
                    raise CaseError(f"{where} ({case.id}): unknown document {unknown[0]!r}")
            seen[case.id] = where
            cases.append(case)
    return cases


def catalog_doc_ids(catalog_path: Path) -> dict[str, str]:
    """Map seed file name, corpus file name and id of every catalog entry to the document id."""
    try:
        docs = read_catalog(Path(catalog_path))
    except FileNotFoundError:
        raise CaseError(f"{catalog_path}: no catalog") from None
    except CatalogError as e:
        raise CaseError(f"invalid catalog: {e}") from None
    out: dict[str, str] = {}
    for d in docs:
        for key in (d.id, d.file, d.seed):
            if key:
                out[key] = d.id
    return out


def gold_doc_ids(case: EvalCase, doc_ids: dict[str, str]) -> list[str]:
    """The case's gold document ids (a name missing from the map is kept as given)."""
    return [doc_ids.get(d, d) for d in case.docs]


TEXT_SUFFIXES = {".txt", ".md"}


def catalog_doc_texts(catalog_path: Path) -> dict[str, str]:
    """Document id -> normalised full text, for the catalog's plain-text files (the scorer reads
    the seed files, which the corpus copies unedited). Other formats are left out."""
    from assistant.evals.metrics import norm

    try:
        docs = read_catalog(Path(catalog_path))
    except (OSError, CatalogError):
        return {}
    out = {}
    for d in docs:
        f = Path(catalog_path).parent / d.file
        if f.suffix.lower() in TEXT_SUFFIXES and f.is_file():
            try:
                out[d.id] = norm(f.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                pass
    return out
