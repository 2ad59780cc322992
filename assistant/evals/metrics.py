"""Pure metric functions over ``records.Answer``.

The definitions follow the official scorer (``../shared/tools/score_api.py``) exactly where it
defines a metric:

- text is compared after :func:`norm` (typographic spaces, quotes and dashes folded,
  whitespace collapsed, lowercased);
- a passage *hits* when it contains any evidence string;
- an answer is *correct* when it was answered and every ``must_include`` group has at least one
  of its strings in the answer (a group given as a plain string is a one-string group), and
  (added here) none of the case's ``must_not`` strings is in it;
- refusal is right on an unanswerable question when ``answered`` is false;
- latency p50 is the median, p95 is ``sorted(x)[int(0.95 * (n - 1))]``.

Added here: hit@1/3/5/10 and MRR (rank of the first passage that hits, cut off at the
retrieval depth), and *citation correctness*: some citation points at a passage of a gold
document whose text (or, when the passage is not among those returned, the citation's
quote) contains an evidence string. ``cited_gold_doc`` is the scorer's weaker check: some
cited passage's text begins with text of a gold document (see :func:`cited_gold_doc`).
*Lead correct*: the answer's first claim, up to its first citation marker ``[n]``, is itself a
correct answer (it states the answer first). *Wrong answer*: answered, not correct. *Answer
length*: characters of the answer text (answered questions).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence

from assistant.records import Answer
from assistant.text import lead_text

HIT_KS: tuple[int, ...] = (1, 3, 5, 10)
"""The k of the hit@k columns. ``hit@k`` for k beyond the retrieval depth is not measurable."""

UNANSWERABLE = "unanswerable"


def norm(s: str) -> str:
    """The scorer's normalisation (copied from score_api.py; keep them identical)."""
    s = s.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " ")
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    s = s.replace("\u2013", "-").replace("\u2014", "-")
    return re.sub(r"\s+", " ", s).strip().lower()


def contains_any(haystack: str, needles: Iterable[str]) -> bool:
    h = norm(haystack)
    return any(norm(n) in h for n in needles)


def group_ok(answer: str, group: str | Sequence[str]) -> bool:
    alts = [group] if isinstance(group, str) else list(group)
    return contains_any(answer, alts)


# --- retrieval -------------------------------------------------------------------------


def first_hit_rank(passage_texts: Sequence[str], evidence: Sequence[str]) -> int | None:
    """1-based rank of the first passage containing an evidence string, or None."""
    if not evidence:
        return None
    needles = [norm(e) for e in evidence if norm(e)]
    for i, text in enumerate(passage_texts, start=1):
        t = norm(text)
        if any(n in t for n in needles):
            return i
    return None


def hit_at(rank: int | None, k: int) -> bool:
    return rank is not None and rank <= k


def reciprocal_rank(rank: int | None, depth: int | None = None) -> float:
    if rank is None or (depth is not None and rank > depth):
        return 0.0
    return 1.0 / rank


# --- answers ---------------------------------------------------------------------------




def _states(text: str, must_include: Sequence[str | Sequence[str]], must_not: Sequence[str]) -> bool:
    return all(group_ok(text, g) for g in must_include) and not contains_any(text, must_not)


def answer_correct(answer: Answer, must_include: Sequence[str | Sequence[str]], must_not: Sequence[str] = ()) -> bool:
    """Answered, every group has one acceptable string in the answer text, and no ``must_not`` string is there."""
    return bool(answer.answered) and _states(answer.answer or "", must_include, must_not)


def lead_correct(answer: Answer, must_include: Sequence[str | Sequence[str]], must_not: Sequence[str] = ()) -> bool:
    """Correct, and the lead (up to the first citation marker) already states the answer."""
    return answer_correct(answer, must_include, must_not) and _states(lead_text(answer.answer or ""), must_include, ())


def refusal_ok(answer: Answer) -> bool:
    """Right behaviour on an unanswerable question: refuse."""
    return not answer.answered


def false_refusal(answer: Answer) -> bool:
    """Refused an answerable question."""
    return not answer.answered


def _cited_texts(answer: Answer) -> list[tuple[str, str]]:
    """(document id, text) of each cited passage; the quote stands in for a missing passage."""
    by_id = {p.id: p for p in answer.passages}
    out = []
    for c in answer.citations:
        p = by_id.get(c.passage_id)
        if p is not None:
            out.append((p.document_id or c.document_id, p.text or c.quote or ""))
        else:
            out.append((c.document_id, c.quote or ""))
    return out


def cited_gold_doc(answer: Answer, gold_doc_ids: Iterable[str], doc_texts: dict[str, str] | None = None) -> bool:
    """Some citation comes from a gold document: the scorer's ``cited_gold_doc``.

    With ``doc_texts`` (document id -> :func:`norm`-ed full text) it is the scorer's exact test:
    the first 80 normalised characters of the cited passage's text (its quote when the passage
    is not returned) occur in a gold document's text. So a passage whose text does not start
    with verbatim source text (e.g. a synthetic context header) fails it. Without texts, or for
    a gold document whose text is not available, the citation's document id decides.
    """
    gold = list(dict.fromkeys(gold_doc_ids))
    for doc, text in _cited_texts(answer):
        if doc_texts is None or any(g not in doc_texts for g in gold):
            if doc in gold:
                return True
            continue
        probe = norm(text)[:80]
        if probe and any(probe in doc_texts[g] for g in gold):
            return True
    return False


def citation_correct(answer: Answer, gold_doc_ids: Iterable[str], evidence: Sequence[str]) -> bool:
    """Some cited passage comes from a gold document and contains an evidence string."""
    gold = set(gold_doc_ids)
    return any(doc in gold and contains_any(text, evidence) for doc, text in _cited_texts(answer))


# --- aggregation -----------------------------------------------------------------------


def p50(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def p95(values: Sequence[float]) -> float | None:
    return round(sorted(values)[int(0.95 * (len(values) - 1))], 1) if values else None


def frac(flags: Iterable[bool | None]) -> float | None:
    """Share of true among the non-None flags; None when there are none."""
    xs = [bool(f) for f in flags if f is not None]
    return round(sum(xs) / len(xs), 4) if xs else None


HIGHER_IS_BETTER = (
    *(f"hit@{k}" for k in HIT_KS),
    "mrr",
    "answer_correct",
    "lead_correct",
    "citation_correct",
    "cited_gold_doc",
    "refusal_accuracy",
)
LOWER_IS_BETTER = ("false_refusal_rate", "wrong_answer_rate")
GATED_METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
"""Metrics the regression gate compares with the baseline. Latency is reported, never gated:
it depends on the machine."""


def summarize(rows: Sequence[dict], depth: int) -> dict:
    """Aggregate per-question rows (see ``runner.score_case``) into one metrics dict.

    Retrieval, correctness and citation metrics are over the answerable questions, refusal
    accuracy over the unanswerable ones, as in the scorer. An errored question counts as a
    miss everywhere it applies. ``hit@k`` for k > depth is None (not measured).
    """
    ans = [r for r in rows if r["kind"] != UNANSWERABLE]
    una = [r for r in rows if r["kind"] == UNANSWERABLE]
    out: dict = {"n": len(rows), "n_answerable": len(ans), "n_unanswerable": len(una)}
    for k in HIT_KS:
        out[f"hit@{k}"] = frac(hit_at(r.get("rank"), k) for r in ans) if k <= depth else None
    out["mrr"] = round(sum(reciprocal_rank(r.get("rank"), depth) for r in ans) / len(ans), 4) if ans else None
    out["answer_correct"] = frac(r.get("correct", False) for r in ans)
    out["lead_correct"] = frac(r.get("lead_correct", False) for r in ans)
    out["wrong_answers"] = sum(1 for r in ans if r.get("answered") and not r.get("correct"))
    out["wrong_answer_rate"] = frac(bool(r.get("answered") and not r.get("correct")) for r in ans)
    out["citation_correct"] = frac(r.get("citation_ok", False) for r in ans)
    out["cited_gold_doc"] = frac(r.get("cited_gold_doc", False) for r in ans)
    out["refusal_accuracy"] = frac(r.get("refusal_ok", False) for r in una)
    out["false_refusals"] = sum(1 for r in ans if r.get("false_refusal"))
    out["false_refusal_rate"] = frac(bool(r.get("false_refusal")) for r in ans)
    out["errors"] = sum(1 for r in rows if r.get("error"))
    lengths = [len(r.get("answer") or "") for r in rows if r.get("answered")]
    out["answer_chars_p50"] = p50(lengths)
    lat = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None and not r.get("error")]
    out["latency_p50_ms"] = p50(lat)
    out["latency_p95_ms"] = p95(lat)
    return out


def summarize_groups(rows: Sequence[dict], depth: int) -> dict:
    """``{"overall": ..., "by_kind": {kind: ...}, "by_doc": {doc_id: ...}, "by_kind_lang": {"kind/lang": ...}}``.

    A cross-document question counts towards each of its documents; unanswerable questions
    have no document.
    """
    by_kind: dict[str, list[dict]] = {}
    by_doc: dict[str, list[dict]] = {}
    by_lang: dict[str, list[dict]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
        by_lang.setdefault(f"{r['kind']}/{r.get('lang', 'en')}", []).append(r)
        for d in r.get("doc_ids") or []:
            by_doc.setdefault(d, []).append(r)
    return {
        "overall": summarize(rows, depth),
        "by_kind": {k: summarize(v, depth) for k, v in sorted(by_kind.items())},
        "by_doc": {d: summarize(v, depth) for d, v in sorted(by_doc.items())},
        "by_kind_lang": {k: summarize(v, depth) for k, v in sorted(by_lang.items())},
    }
