"""The default answerer: extractive, no LLM, no network.

The evidence ranker (``ranker.Ranker``) orders the sentences and table rows of the retrieved
passages and says whether the best of them answers; below its threshold the answerer refuses,
saying what the documents cover when the evidence is about another year. Otherwise the answer
states the figure first (for a table row: the column the number sits in, with the currency from
the table or its document), quotes the span it comes from as citation [1], and adds at most two
supporting claims about the same document and period (one per document for a comparison). A
Swedish span answering an English question is rendered in English beside its exact quote.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable
from functools import lru_cache
from dataclasses import dataclass

import numpy as np

from llama_index.core.schema import NodeWithScore

from assistant.evidence import Candidate, IdfTable, score_candidates, split_spans
from assistant.lexical import index_tokens, sv_to_en, token_set
from assistant.query import QueryPlan
from assistant.ranker import ANSWER_SPANS, Ranker
from assistant.records import Answer, Citation, DocumentInfo, PassageOut
from assistant.text import FIGURE, YEAR, format_number

VALUE = re.compile(r"[(\-–]?\s*[\d][\d\s,.]*\)?\s*%?|[-–]")  # a cell that is a figure, not a label
COMPARISON = re.compile(r"\b(compare\w*|agree\w*|differ\w*|versus|vs\.?|both|jämför\w*|skillnad\w*|överens)\b", re.I)


@dataclass(frozen=True)
class AnswerPolicy:
    threshold: float | None = None
    """Probability the best span needs to be stated; None: the ranker's own (chosen by cross-validation)."""
    max_claims: int = 3
    """The lead and at most two supporting claims."""
    support_margin: float = 2.0
    """A supporting claim's ranking score may be at most this far below the lead's."""


def _ordinal(n: str) -> str:
    if not n.isdigit():
        return n
    k = int(n)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def describe_row(cand: Candidate, plan: QueryPlan) -> str | None:
    """"Unearmarked: USD 3,508,772 (Unearmarked Income)": the row's figure in the column the question asks about."""
    header = cand.node.metadata.get("table_header")
    if not header:
        return None
    cells = [c.strip() for c in cand.quote.split("\t")]
    head = header.split("\t")
    width = max(len(cells), len(head))  # extraction may drop empty leading cells: right-align the columns
    cells, head = [""] * (width - len(cells)) + cells, [""] * (width - len(head)) + head
    currency = cand.node.metadata.get("currency")
    labels = [c for c in cells if c and not VALUE.fullmatch(c)]
    label = max(labels, key=len) if labels else None
    qtok = set(plan.tokens)
    pairs: list[tuple[str, str, float]] = []
    for h, v in zip(head, cells):
        if not v or not VALUE.fullmatch(v):
            continue
        match = len(qtok & token_set(h, "en"))
        pairs.append((h.strip(), v, match))
    if not pairs:
        return None
    best = max(p[2] for p in pairs)
    totals = [p for p in pairs if p[0].lower() == "total"]
    if totals and "total" in qtok:
        chosen = totals
    elif best > 0:
        chosen = [p for p in pairs if p[2] == best]
    else:
        chosen = totals or pairs
    parts = []
    for h, v, _ in pairs:
        if "rank" in h.lower():
            parts.append(f"ranked {_ordinal(v)}")
    for h, v, _ in chosen:
        if "rank" in h.lower():
            continue
        value = format_number(v)
        money = currency and re.search(r"\d{3}", re.sub(r"\D", "", v)) and "%" not in v
        parts.append(f"{h or 'value'}: {currency + ' ' if money else ''}{value}")
    lead = "; ".join(parts)
    return f"{lead} ({label})" if label else lead


def lead_figure(sentence: str, plan: QueryPlan) -> str | None:
    """The number (with its unit) in a sentence nearest to the query's terms, to state first."""
    qtok = set(plan.tokens)
    best, best_score = None, -1.0
    for m in FIGURE.finditer(sentence):
        value = m.group(0).strip(" ,.")
        if YEAR.fullmatch(value):
            continue
        window = sentence[max(0, m.start() - 60): m.end() + 60]
        score = len(qtok & token_set(window, "en"))
        if score > best_score:
            best, best_score = value, score
    return best if best_score >= 2 else None


@lru_cache(maxsize=1)
def _render_table() -> dict[str, str]:
    text = importlib.resources.files("assistant.data").joinpath("render_sv_en.tsv").read_text(encoding="utf-8")
    return {sv: en for sv, en in (line.split("\t", 1) for line in text.splitlines() if "\t" in line and not line.startswith("#"))}


SWEDISH_ENDINGS = ("ernas", "arnas", "ornas", "erna", "arna", "orna", "ens", "ets", "ade", "ande", "en", "et", "na",
                   "ns", "er", "ar", "or", "at", "a", "e", "s", "t", "n")
"""Inflection endings (definite, plural, genitive, past), longest first: the lexicon lists base forms."""


def _base_sense(word: str, table: dict[str, list[str]]) -> str | None:
    if word in table:
        return table[word][0]
    for ending in SWEDISH_ENDINGS:
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) >= 3:
            for base in (stem, stem + "a", stem + "e"):
                if base in table:
                    return table[base][0]
    return None


def _swedish_sense(word: str, table: dict[str, list[str]]) -> str | None:
    """The first English sense of a Swedish word: as listed, from its base form, or of the parts of
    a compound ("fältverksamhet" = "fält" + "verksamhet")."""
    sense = _base_sense(word, table)
    if sense or len(word) < 7:
        return sense
    for cut in range(len(word) - 3, 2, -1):
        head, tail = word[:cut], word[cut:]
        first = next((table[h][0] for h in (head, head + "a", head[:-1] if head.endswith("s") else "") if h in table), None)
        rest = _base_sense(tail, table)
        if first and rest:
            return f"{first} {rest}"
    return None


def english_gloss(quote: str) -> str:
    """A word-by-word English rendering of a Swedish span (function words from ``render_sv_en.tsv``,
    then the domain glossary and Folkets lexikon): figures and names as they stand, each word its
    first sense. Rough, but it states the fact in the reader's language beside the exact quote."""
    table, render = sv_to_en(), _render_table()
    out = []
    for token in re.findall(r"\d[\d ,.]*\d|\d|[^\W\d_]+(?:[-:][^\W\d_]+)*|[^\w\s]", quote):
        low = token.lower()
        if token[0].isdigit() or not token[0].isalpha() or (len(token) > 1 and token.isupper()):
            out.append(token)  # figures, punctuation, codes and acronyms (SEK, IOM) as they stand
            continue
        word = render.get(low) or _swedish_sense(low, table) or token
        out.append(word[0].upper() + word[1:] if token[0].isupper() else word)
    text = " ".join(out)
    return re.sub(r"\s+([,.;:!?)])", r"\1", re.sub(r"([(])\s+", r"\1", text))


def to_passage_out(hit: NodeWithScore) -> PassageOut:
    md = hit.node.metadata
    return PassageOut(
        id=hit.node.node_id,
        document_id=md["document_id"],
        title=md["title"],
        page=md.get("page"),
        section=md.get("section"),
        text=hit.node.text,
        score=round(float(hit.score), 4),
    )


class ExtractiveAnswerer:
    def __init__(self, idf: IdfTable, documents: list[DocumentInfo], ranker: Ranker, policy: AnswerPolicy | None = None,
                 span_similarity: Callable[[QueryPlan], Callable[[str, int], np.ndarray | None]] | None = None):
        """``span_similarity(plan)``: how the question's vector compares with the spans of a passage
        (``PassageStore.span_similarity`` of the query vector)."""
        self.idf = idf
        self.span_similarity = span_similarity
        self.documents = {d.id: d for d in documents}
        self.doc_years = {d.id: d.years for d in documents}
        self.ranker = ranker
        self.policy = policy or AnswerPolicy()
        self.threshold = self.policy.threshold if self.policy.threshold is not None else ranker.threshold

    def candidates(self, plan: QueryPlan, retrieved: list[NodeWithScore]) -> list[Candidate]:
        """Every span of the retrieved passages, best first by the ranker's score."""
        name_tokens = [t for n in plan.names for t in index_tokens(n, "en")]
        similarity = self.span_similarity(plan) if self.span_similarity else None
        cands = score_candidates(plan, retrieved, self.idf, self.doc_years, name_tokens, similarity)
        for c in cands:
            c.score = self.ranker.score(c.features)
        cands.sort(key=lambda c: -c.score)
        return cands

    def answerable(self, cands: list[Candidate]) -> float:
        """The probability that stating the best span answers the question."""
        return self.ranker.answer_probability([(c.features, c.score) for c in cands[:ANSWER_SPANS]])

    def answer(self, question: str, plan: QueryPlan, retrieved: list[NodeWithScore]) -> Answer:
        passages = [to_passage_out(h) for h in retrieved]
        cands = self.candidates(plan, retrieved)
        if self.answerable(cands) < self.threshold:
            return Answer(answer=self.refusal(plan, cands, passages), answered=False, passages=passages)
        claims, text = self.compose(cands, plan)
        citations = [Citation(n=n, passage_id=c.node.node_id, document_id=c.document_id, title=c.node.metadata["title"],
                              page=c.node.metadata.get("page"), section=c.node.metadata.get("section"), quote=c.quote)
                     for n, c in enumerate(claims, start=1)]
        return Answer(answer=text, answered=True, citations=citations, passages=passages)

    def compose(self, cands: list[Candidate], plan: QueryPlan) -> tuple[list[Candidate], str]:
        """The claims an answer states from ranked candidates, and its text (claim ``n`` marked ``[n]``)."""
        claims = self.select_claims(cands, plan)
        lines = [self.claim_text(c, plan, first=n == 1) + f" [{n}]" for n, c in enumerate(claims, start=1)]
        return claims, "\n\n".join(lines)

    def select_claims(self, cands: list[Candidate], plan: QueryPlan) -> list[Candidate]:
        """The best span; for a comparison, the best span of each other document; one span per further
        asked year; then close runners-up about the same document and period; then a list the best
        span opens."""
        best = cands[0]
        claims = [best]
        good = [c for c in cands[1:30] if best.score - c.score <= self.policy.support_margin
                and c.features["names_missing"] <= best.features["names_missing"]]

        def overlaps(c: Candidate) -> bool:
            """Same words, or a second row of a table already quoted (one row answers; more are noise)."""
            return any(c.quote in k.quote or k.quote in c.quote
                       or (c.is_row and k.is_row and c.node.metadata.get("section") == k.node.metadata.get("section"))
                       for k in claims)

        if len(set(plan.documents)) >= 2 or COMPARISON.search(plan.question):
            for c in good:
                if c.document_id not in {k.document_id for k in claims} and not overlaps(c):
                    claims.append(c)
        for year in plan.years[1:]:
            if not any(str(year) in k.quote for k in claims):
                extra = next((c for c in cands[1:30] if str(year) in c.quote
                              and best.score - c.score <= 2 * self.policy.support_margin and not overlaps(c)), None)
                if extra:
                    claims.append(extra)
        for c in good:
            if len(claims) >= self.policy.max_claims:
                break
            if c.document_id == best.document_id and c.features["year_elsewhere"] == 0 and not overlaps(c):
                claims.append(c)
        if best.quote.rstrip().endswith(":"):
            spans = [q for q, _ in split_spans(best.node)]
            after = spans[spans.index(best.quote) + 1:] if best.quote in spans else []
            claims += [Candidate(best.node, best.rank, best.passage_score, q, False) for q in after[:8]
                       if not any(q == k.quote for k in claims)]
        return claims

    def claim_text(self, c: Candidate, plan: QueryPlan, first: bool) -> str:
        md = c.node.metadata
        where = md.get("section") or md.get("title")
        if c.is_row:
            described = describe_row(c, plan)
            if described:
                return f"**{described}**, per {where}."
        quote = " ".join(c.quote.split())
        rendered = f"“{quote}”"
        if md.get("language") == "sv" and not plan.swedish:
            rendered = f"{english_gloss(quote)} (Swedish: “{quote}”)"
        if plan.wants_number and first:
            figure = lead_figure(quote, plan)
            if figure:
                return f"**{format_number(figure) if figure[0].isdigit() else figure}**: {rendered}"
        return rendered

    def refusal(self, plan: QueryPlan, cands: list[Candidate], passages: list[PassageOut]) -> str:
        """Say so, and what the documents do cover when the evidence is about another year."""
        text = "The documents do not contain the answer to this question."
        asked = {str(y) for y in plan.years}
        near = next((c for c in cands[:10] if c.features.get("year_elsewhere") and c.features["cov"] >= 0.6), None)
        if near is not None:
            other = sorted(set(YEAR.findall(near.quote + " " + (near.node.metadata.get("section") or ""))) - asked)
            if other:
                md = near.node.metadata
                where = ", ".join(x for x in (md["title"], md.get("section")) if x)
                text = (f"The documents do not contain the answer for {', '.join(sorted(asked))}. They give it only for "
                        f"{', '.join(other)}: “{' '.join(near.quote.split())}” ({where}).")
        if passages:
            closest = "; ".join(f"{p.title}" + (f", p. {p.page}" if p.page else "") for p in passages[:3])
            text += f" The closest passages are from: {closest}."
        return text
