"""Finer-grained evidence inside retrieved passages: sentences and table rows, described by features.

No cross-encoder ships offline, so precision comes from here: each candidate span is an exact
substring of its passage (so a citation can quote and highlight it) and is described by the
signals the answer depends on: how much of the question's idf-weighted vocabulary it and its
context (table header, title, section) cover, whether it has the asked kind of figure, year and
names, how its passage ranked. ``ranker.Ranker`` turns the features into the probability that
the span answers the question; ``prior`` is the hand-set score it started from.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from llama_index.core.schema import NodeWithScore, TextNode

from assistant.chunking import TABLE_CONTEXT
from assistant.lexical import token_set
from assistant.names import mentions
from assistant.query import CHANGE, MONEY, PERCENT, QueryPlan
from assistant.tables import row_cells
from assistant.text import (FOOTNOTE, NUMBER, YEAR, figures_in, has_number, note_marks, number_key, on_footnote_line,
                            sentence_spans)

if TYPE_CHECKING:
    from assistant.store import StoreStats

FEATURES = (
    "prior", "cov", "own_cov", "context_cov", "passage", "recip_rank", "is_row", "column", "number", "no_number",
    "figure", "money", "year_in_quote", "year_support", "year_elsewhere", "names", "names_missing", "routed",
    "same_language", "short", "log_len", "first_span", "extreme_row", "dense", "confidence", "window",
    "missing_key", "missing_in_passage", "place_row", "label_cov", "step_row",
)
"""The features of a candidate, in the order the ranker's weights use."""


@dataclass(frozen=True)
class PriorWeights:
    """The hand-set score a candidate starts from (also one of the ranker's features)."""

    coverage: float = 0.55
    own_coverage: float = 0.25
    passage: float = 0.2
    column: float = 0.12
    number: float = 0.08
    figure: float = 0.15
    year: float = 0.05
    short: float = 0.1
    around: float = 0.6
    """How much a word counts when it is only in the span's context (table header, previous sentence)."""
    passage_only: float = 0.3
    """... and when it is only elsewhere in the passage."""


PRIOR = PriorWeights()


@dataclass
class Candidate:
    node: TextNode
    rank: int
    """Rank of the passage in retrieval (0 = best)."""
    passage_score: float
    quote: str
    is_row: bool
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    """The ranker's probability that this span answers the question (the prior before ranking)."""

    @property
    def has_number(self) -> bool:
        return has_number(self.quote)

    @property
    def document_id(self) -> str:
        return self.node.metadata["document_id"]


class IdfTable:
    """Inverse document frequency of index tokens over the passages."""

    def __init__(self, token_lists: list[list[str]]):
        n = len(token_lists)
        df = Counter(t for toks in token_lists for t in set(toks))
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.default = math.log(1 + (n + 0.5) / 0.5)

    @classmethod
    def from_stats(cls, stats: StoreStats) -> IdfTable:
        """The table a store saved with its build (``StoreStats.idf``), not recomputed from the texts."""
        table = cls.__new__(cls)
        table.idf, table.default = dict(stats.idf), stats.idf_default
        return table

    def weight(self, token: str) -> float:
        return self.idf.get(token, 0.0)


def split_spans(node: TextNode) -> list[tuple[str, bool]]:
    """The passage's sentences and table rows as (exact substring, is_row)."""
    text = node.text
    spans: list[tuple[str, bool]] = []
    if node.metadata.get("kind") == "table":
        header = node.metadata.get("table_header")
        for line in text.split("\n"):
            if not line.strip() or line.startswith(TABLE_CONTEXT) or line.split() == (header or "").split():
                continue  # a table's header says what its rows mean; it states nothing itself
            cells = [c for c in row_cells(line, header) if c]
            spans.append((line.strip(), len(cells) >= 2 and bool(re.search(r"\d", line))))
        return spans
    for a, b in sentence_spans(text):
        piece = text[a:b]
        if len(piece) > 3:
            spans.append((piece, "\t" in piece and bool(re.search(r"\d", piece))))
    return spans


def note_links(quotes: list[str]) -> list[list[int]]:
    """For each span of a passage, the spans a footnote mark links it to: a sentence's footnotes
    ("MOPAN⁵-utvärderingen" -> "⁵ *Multilateral Organisation ...*"), and a footnote's citing spans."""
    opens = {i: m.group(1) for i, q in enumerate(quotes) if (m := FOOTNOTE.match(q))}
    cites = [set(note_marks(q)) for q in quotes]
    return [[k for k, c in enumerate(cites) if opens[i] in c] if i in opens
            else [k for k, mark in opens.items() if mark in cites[i]] for i in range(len(quotes))]


CONTENTS = re.compile(r"\s*(?:table of )?contents?\s*$|\s*innehåll(?:sförteckning)?\s*$", re.I)
"""The heading of a table of contents."""

WINDOW_CHARS = 400
"""The longest two-sentence window (``sentence_windows``) that is a candidate."""


def sentence_windows(node: TextNode, spans: list[tuple[str, bool]]) -> list[tuple[str, int]]:
    """Two consecutive sentences of a passage as one candidate: (exact substring, index of the first).
    An answer often follows the sentence that names what the question asks about ("The review
    ... in 2021." "This concluded that IOM's level of maturity is 'developing'."), and a sentence
    its footnote; a footnote and what follows it at the foot of a page are not one."""
    if node.metadata.get("kind") == "table":
        return []
    text, at, found = node.text, 0, []
    for quote, _ in spans:
        start = text.find(quote, at)
        found.append((start, start + len(quote)))
        at = max(at, start + len(quote)) if start >= 0 else at
    return [(text[a:d], i) for i, ((a, b), (c, d)) in enumerate(zip(found, found[1:]))
            if a >= 0 and c >= b and not spans[i][1] and not spans[i + 1][1] and d - a <= WINDOW_CHARS
            and not on_footnote_line(text, a)]  # a footnote runs on into nothing


SAME_SENTENCE_CHARS = 30
"""A sentence this long that two spans share makes them one piece of evidence."""


def same_evidence(a: str, b: str) -> bool:
    """Do two spans state the same thing: one holds the other, or they share a sentence (a sentence
    and its window; a sentence and its copy numbered "247." in an overlapping passage)?"""
    if a in b or b in a:
        return True
    return any(y - x >= SAME_SENTENCE_CHARS and a[x:y] in b for x, y in sentence_spans(a)) or any(
        y - x >= SAME_SENTENCE_CHARS and b[x:y] in a for x, y in sentence_spans(b))


def apart_from_best(quotes: list[str]) -> list[int]:
    """Of spans ranked best first, the indexes of the best and of those that are not the same
    evidence (``same_evidence``): a sentence and its window are not a close runner-up."""
    if not quotes:
        return []
    return [0] + [i for i, q in enumerate(quotes[1:], start=1) if not same_evidence(q, quotes[0])]


def span_embed_text(node: TextNode, quote: str, is_row: bool) -> str:
    """What the dense model sees of a span: where it stands (section, or title), a row's column
    header, then the span itself."""
    md = node.metadata
    head = [md.get("section") or md.get("title") or ""]
    if is_row and md.get("table_header"):
        head.append(" | ".join(md["table_header"].split("\t")))
    return "\n".join([*filter(None, head), quote])


CELL_NUMBER = re.compile(rf"^\(?-?({NUMBER.pattern})\)?%?$")


def cell_value(cell: str) -> float | None:
    """A table cell's figure, brackets as negative; None for a label, a year or a dash."""
    cell = cell.strip()
    m = CELL_NUMBER.match(cell)
    if not m or YEAR.fullmatch(cell):
        return None
    value = float(number_key(m.group(1)))
    return -value if cell.startswith(("(", "-")) else value


def row_as_stated(row: str, metadata: dict) -> str:
    """A row with its table's currency and scale beside each figure ("USD 3 508 772", "DKK 48
    million"): what its figures are, as a sentence would say them."""
    currency, scale = metadata.get("currency"), metadata.get("scale")
    if not currency:
        return row
    return "\t".join(f"{currency} {c.strip()}{' ' + scale if scale else ''}"
                      if cell_value(c) is not None and "%" not in c else c
                      for c in row_cells(row, metadata.get("table_header")))


def row_value(row: str, header: str | None = None) -> float | None:
    """The row's last figure (its total or its only value)."""
    for cell in reversed([c for c in row_cells(row, header) if c]):
        if CELL_NUMBER.match(cell.strip()) and not YEAR.fullmatch(cell.strip()):
            return cell_value(cell)
    return None


def brackets_are_notation(spans: list[tuple[str, bool]], header: str | None = None) -> bool:
    """Is every figure of a passage's rows in brackets ("(1,000,000.00)")? Then the brackets are the
    table's notation, not negatives."""
    values = [v for q, is_row in spans if is_row and (v := row_value(q, header)) is not None]
    return len(values) >= 2 and all(v < 0 for v in values)


def extreme_rows(spans: list[tuple[str, bool]], direction: str | None, header: str | None = None) -> set[str]:
    """The rows with the largest (``max``) or smallest (``min``) figure among a passage's rows."""
    if direction is None:
        return set()
    values = {q: v for q, is_row in spans if is_row and (v := row_value(q, header)) is not None}
    if len(values) < 2:
        return set()
    if brackets_are_notation(spans, header):
        values = {q: -v for q, v in values.items()}
    target = max(values.values()) if direction == "max" else min(values.values())
    return {q for q, v in values.items() if v == target}


def rows_along(spans: list[tuple[str, bool]], stated: frozenset[str], step: int) -> set[str]:
    """The rows ``step`` rows along from a row that states one of the figures ``stated`` (a
    follow-up's "and who came right after them?" after an answer that stated that row)."""
    if not step or not stated:
        return set()
    rows = [q for q, is_row in spans if is_row]
    anchors = [i for i, q in enumerate(rows) if stated & figures_in(q)]
    return {rows[i + step] for i in anchors if 0 <= i + step < len(rows)}


RANK_HEADING = re.compile(r"\brank|\bplace\b|\bplats|\bplacering", re.I)


def holds_place(row: str, header: str | None, context: str, place: str | None, any_place: bool = False) -> bool:
    """Is the row the one at the asked place of a ranking: its cell under a rank column (or its first
    cell, in a table whose title says it ranks) is that number? With ``any_place`` (a question asking
    where something ranks, "where did Denmark rank?"), any row with a place in that cell."""
    if place is None and not any_place:
        return False
    cells = row_cells(row, header)
    heads = header.split("\t") if header else []
    ranked = [i for i, h in enumerate(heads) if RANK_HEADING.search(h)] if len(heads) == len(cells) else []
    if not ranked and RANK_HEADING.search(context):
        ranked = [next((i for i, c in enumerate(cells) if c), 0)]
    return any(i < len(cells) and (cells[i] == place if place else cells[i].isdigit()) for i in ranked)


def column_matches(row: str, header: str | None, tokens: set[str], lang: str) -> bool:
    """Does the row have a value under a column whose heading the question uses?"""
    if not header:
        return False
    cells, heads = row_cells(row, header), header.split("\t")
    if len(cells) != len(heads):
        return False
    return any(cell.strip() and tokens & token_set(head, lang) for cell, head in zip(cells[1:], heads[1:]))


def counts_in_row(row: str, metadata: dict, plan: QueryPlan) -> bool:
    """Does a row state the count a question asks for ("how many staff")? Its label and its table's
    title name what it counts, so any figure that is not a share or money is one."""
    if plan.figure in (PERCENT, CHANGE, MONEY):
        return False
    cells = row_cells(row, metadata.get("table_header"))[1:]
    return not metadata.get("currency") and any(cell_value(c) is not None and "%" not in c for c in cells)


def table_context(node: TextNode) -> str:
    md = node.metadata
    return " ".join(str(x) for x in (md.get("section"), md.get("table_header"), md.get("title")) if x)


CONTEXT_WEIGHT = 0.5
"""How much a word of a question's context counts beside its own words: a follow-up's (the previous
question and answer, whose subject it asks about) and a part's (the rest of the question it is part of)."""


def group_weights(groups: list[frozenset[str]], idf: IdfTable, names: list[str] = ()) -> list[float]:
    """A question word weighs its rarest form's idf (a word the corpus lacks weighs half the maximum);
    names (Korea, Nigeria, RT0782) weigh more, since evidence without them is about something else."""
    return [max((idf.weight(t) or 0.5 * idf.default) for t in g) * (2.5 if g & set(names) else 1.0) for g in groups]


def year_support(quote: str, context: str, years: list[int], doc_years: tuple[int, int] | None,
                 is_row: bool = False) -> float:
    """1 when the asked year is in the evidence, 0.5 when the evidence names no year but its document
    covers it, 0 when the evidence is about other years. A table row's year is its table's (the title or
    a column), not one that happens to stand in the row's label ("the 2021 resettlement quota")."""
    if not years:
        return 1.0
    if is_row and YEAR.search(context):
        quote = ""
    if any(re.search(rf"\b{y}\b", quote + " " + context) for y in years):
        return 1.0
    if not YEAR.search(quote) and doc_years and any(doc_years[0] <= y <= doc_years[1] for y in years):
        return 0.5
    return 0.0


def _coverage(weights: list[tuple[frozenset[str], float]], tokens: frozenset[str] | set[str]) -> float:
    total = sum(w for _, w in weights)
    return sum(w for g, w in weights if g & tokens) / total if total else 0.0


def missing_key(weights: list[tuple[frozenset[str], float]], tokens: frozenset[str] | set[str]) -> float:
    """The weight of the heaviest question word the tokens lack, relative to the heaviest word: 1 when
    the evidence lacks the question's key word ("WASH", "Norway", "assessed"), 0 when it has them all."""
    heaviest = max((w for _, w in weights), default=0.0)
    return max((w for g, w in weights if not g & tokens), default=0.0) / heaviest if heaviest else 0.0


def score_candidates(
    plan: QueryPlan,
    retrieved: list[NodeWithScore],
    idf: IdfTable,
    doc_years: dict[str, tuple[int, int] | None],
    name_tokens: list[str] = (),
    span_similarity: Callable[[str, int], np.ndarray | None] | None = None,
    windows: bool = True,
) -> list[Candidate]:
    """Every sentence/row of the retrieved passages (and, with ``windows``, every two sentences in a
    row) with its features, sorted by the prior, best first.

    ``span_similarity(passage id, span count)``: the query's cosine similarity to each span of the
    passage (the index's span vectors), or None when the index has none for it."""
    context_weights = list(zip(plan.context_terms, group_weights(plan.context_terms, idf)))
    followed = [(g, CONTEXT_WEIGHT * w) for g, w in context_weights]
    weights = list(zip(plan.terms, group_weights(plan.terms, idf, name_tokens))) + followed
    plain = list(zip(plan.terms, group_weights(plan.terms, idf))) + followed
    total = sum(w for _, w in weights) or 1.0
    all_tokens = {t for g in plan.terms for t in g}
    top = max((r.score for r in retrieved), default=1.0) or 1.0
    question_lang = "sv" if plan.swedish else "en"
    out: list[Candidate] = []
    for rank, hit in enumerate(retrieved):
        node = hit.node
        md = node.metadata
        if CONTENTS.match(md.get("section") or ""):
            continue  # a table of contents lists headings and pages: it answers nothing
        lang = md.get("language", "en")
        context = table_context(node)
        context_tokens = token_set(context, lang)
        passage_tokens = token_set(node.text, lang)
        missing_in_passage = missing_key(weights, passage_tokens | context_tokens)
        spans = split_spans(node)
        extremes = extreme_rows(spans, plan.extreme, md.get("table_header"))
        stepped = rows_along(spans, plan.stated, plan.step)
        dense = span_similarity(node.node_id, len(spans)) if span_similarity else None
        label_tokens = [token_set(q, lang) for q, _ in spans]  # a row's own cells, without its table's words
        own_tokens = [t | (context_tokens if is_row else frozenset()) for t, (_, is_row) in zip(label_tokens, spans)]
        links = note_links([q for q, _ in spans])
        entries = [(q, is_row, i, i) for i, (q, is_row) in enumerate(spans)]
        entries += [(q, False, i, i + 1) for q, i in (sentence_windows(node, spans) if windows else [])]
        for quote, is_row, i, last in entries:
            own = own_tokens[i] | own_tokens[last]  # a row means what its table's title and header say
            around = own | context_tokens
            # "the Office" in this sentence is the one the previous sentence names; a footnote means
            # what the sentence citing it says, and a sentence what its footnotes add
            previous = frozenset().union(own_tokens[i - 1] if i > 0 else (),
                                         *(label_tokens[k] for k in links[i] + links[last]))
            own_cov = _coverage(weights, own)
            cov = sum(w if g & own else (PRIOR.around * w if g & (around | previous) else
                                         (PRIOR.passage_only * w if g & passage_tokens else 0.0))
                      for g, w in weights) / total
            cand = Candidate(node, rank, hit.score, quote, is_row)
            column = is_row and column_matches(quote, md.get("table_header"), all_tokens, lang)
            stated = row_as_stated(quote, md) if is_row else quote
            figure = plan.figure is not None and (bool(plan.figure.search(stated))
                                                  or (is_row and counts_in_row(quote, md, plan)))
            year_in_quote = bool(plan.years) and any(str(y) in quote for y in plan.years)
            prior = PRIOR.coverage * cov + PRIOR.own_coverage * own_cov + PRIOR.passage * max(hit.score, 0) / top
            prior += PRIOR.column * column + PRIOR.figure * figure + PRIOR.year * year_in_quote
            if plan.wants_number:
                prior += PRIOR.number if cand.has_number else -PRIOR.number
            if len(quote) < 25 and not is_row:
                prior -= PRIOR.short
            local_text = (quote + " " + context).lower()
            named = [mentions(n, local_text) for n in plan.names]
            support = year_support(quote, context, plan.years, doc_years.get(md["document_id"]), is_row)
            local = token_set(quote + " " + context, lang)
            confidence = 0.5 * _coverage(plain, local | passage_tokens) + 0.5 * _coverage(plain, local)
            confidence *= (0.6 + 0.4 * support) * (0.8 if plan.wants_number and not cand.has_number else 1.0)
            confidence *= 1.0 if all(named) else 0.8
            cand.features = {
                "prior": prior,
                "cov": cov,
                "own_cov": own_cov,
                "context_cov": _coverage(context_weights, around | passage_tokens) if context_weights else 1.0,
                "passage": max(hit.score, 0) / top,
                "recip_rank": 1.0 / (rank + 1),
                "is_row": float(is_row),
                "column": float(column),
                "number": float(plan.wants_number and cand.has_number),
                "no_number": float(plan.wants_number and not cand.has_number),
                "figure": float(figure),
                "money": float(plan.figure is not None and bool(MONEY.search(stated))),
                "year_in_quote": float(year_in_quote),
                "year_support": support,
                "year_elsewhere": float(bool(plan.years) and support == 0.0),
                "names": sum(named) / len(named) if named else 1.0,
                "names_missing": float(not all(named)),
                "routed": float(md["document_id"] in plan.documents),
                "same_language": float(lang == question_lang),
                "short": float(len(quote) < 25 and not is_row),
                "log_len": math.log1p(len(quote)) / 6.0,
                "first_span": float(i == 0),
                "extreme_row": float(quote in extremes),
                "dense": float(max(dense[i], dense[last])) if dense is not None else 0.0,
                "confidence": confidence,
                "window": float(last != i),
                "missing_key": missing_key(weights, local | previous),
                "missing_in_passage": missing_in_passage,
                "place_row": float(is_row and holds_place(quote, md.get("table_header"), context, plan.ordinal,
                                                                     plan.asks_rank)),
                "label_cov": _coverage(weights, label_tokens[i] | label_tokens[last]),
                "step_row": float(is_row and quote in stepped),
            }
            cand.score = prior
            out.append(cand)
    out.sort(key=lambda c: -c.score)
    return out
