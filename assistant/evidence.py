"""Finer-grained evidence inside retrieved passages: sentences and table rows, scored against the query.

No cross-encoder ships offline, so precision comes from here: each candidate span is an exact
substring of its passage (so a citation can quote and highlight it), scored by how much of
the query's idf-weighted vocabulary it and its context (table header, title, section) cover.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from llama_index.core.schema import NodeWithScore, TextNode

from assistant.chunking import TABLE_CONTEXT
from assistant.lexical import token_set

SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+(?=[A-ZÅÄÖ0-9(•\-–])|\n\s*\n|\n(?=\s*(?:[-•▪●]|\d{1,3}\.)\s)")
NUMBER = re.compile(r"\(?-?\d[\d ,.]*\d\)?%?|\b\d\b")


@dataclass
class Candidate:
    node: TextNode
    rank: int
    """Rank of the passage in retrieval (0 = best)."""
    passage_score: float
    quote: str
    is_row: bool
    coverage: float = 0.0
    own_coverage: float = 0.0
    score: float = 0.0

    @property
    def has_number(self) -> bool:
        return any(re.search(r"\d", m.group(0)) for m in NUMBER.finditer(self.quote))


class IdfTable:
    """Inverse document frequency of index tokens over the passages."""

    def __init__(self, token_lists: list[list[str]]):
        n = len(token_lists)
        df = Counter(t for toks in token_lists for t in set(toks))
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.default = math.log(1 + (n + 0.5) / 0.5)

    def weight(self, token: str) -> float:
        return self.idf.get(token, 0.0)


def split_spans(node: TextNode) -> list[tuple[str, bool]]:
    """The passage's sentences and table rows as (exact substring, is_row)."""
    text = node.text
    spans: list[tuple[str, bool]] = []
    if node.metadata.get("kind") == "table":
        for line in text.split("\n"):
            cells = [c for c in line.split("\t") if c.strip()]
            if len(cells) >= 2 and re.search(r"\d", line) and line.strip() != (node.metadata.get("table_header") or ""):
                spans.append((line.strip(), True))
            elif line.strip() and not line.startswith(TABLE_CONTEXT):
                spans.append((line.strip(), False))
        return spans
    pos = 0
    for m in list(SENTENCE_BREAK.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        piece = text[pos:end].strip()
        if len(piece) > 3:
            spans.append((piece, "\t" in piece and bool(re.search(r"\d", piece))))
        pos = m.end() if m else len(text)
    return spans


def column_matches(row: str, header: str | None, tokens: set[str], lang: str) -> bool:
    """Does the row have a value under a column whose heading the question uses?"""
    if not header:
        return False
    cells, heads = row.split("\t"), header.split("\t")
    if len(cells) != len(heads):
        return False
    return any(cell.strip() and tokens & token_set(head, lang) for cell, head in zip(cells[1:], heads[1:]))


def table_context(node: TextNode) -> str:
    md = node.metadata
    return " ".join(str(x) for x in (md.get("section"), md.get("table_header"), md.get("title")) if x)


def group_weights(groups: list[frozenset[str]], idf: IdfTable, names: list[str] = ()) -> list[float]:
    """A question word weighs its rarest form's idf (a word the corpus lacks weighs half the maximum);
    names (Korea, Nigeria, RT0782) weigh more, since evidence without them is about something else."""
    return [max((idf.weight(t) or 0.5 * idf.default) for t in g) * (2.5 if g & set(names) else 1.0) for g in groups]


def score_candidates(
    groups: list[frozenset[str]],
    retrieved: list[NodeWithScore],
    idf: IdfTable,
    wants_number: bool,
    years: list[int],
    names: list[str] = (),
    figure: re.Pattern | None = None,
) -> list[Candidate]:
    """Every sentence/row of the retrieved passages, scored and sorted best first.

    ``groups`` are the question's words, each a set of equivalent tokens (stems, translations).
    """
    weights = list(zip(groups, group_weights(groups, idf, names)))
    total = sum(w for _, w in weights) or 1.0
    all_tokens = {t for g in groups for t in g}
    top = max((r.score for r in retrieved), default=1.0) or 1.0
    out: list[Candidate] = []
    for rank, hit in enumerate(retrieved):
        node = hit.node
        lang = node.metadata.get("language", "en")
        context_tokens = token_set(table_context(node), lang)
        passage_tokens = token_set(node.text, lang)
        previous: set[str] = set()
        for quote, is_row in split_spans(node):
            own = token_set(quote, lang)
            if is_row:  # a row means what its table's title and header say
                own |= context_tokens
            around = own | context_tokens
            own_cov = sum(w for g, w in weights if g & own) / total
            cov = sum(w if g & own else (0.6 * w if g & (around | previous) else
                                         (0.3 * w if g & passage_tokens else 0.0))
                      for g, w in weights) / total
            previous = own  # "the Office" in this sentence is the one the previous sentence names
            cand = Candidate(node, rank, hit.score, quote, is_row, coverage=cov, own_coverage=own_cov)
            score = 0.55 * cov + 0.25 * own_cov + 0.2 * max(hit.score, 0) / top
            if is_row and column_matches(quote, node.metadata.get("table_header"), all_tokens, lang):
                score += 0.12  # the question names the column this row has a value in
            if wants_number:
                score += 0.08 if cand.has_number else -0.08
            if figure is not None and figure.search(quote):
                score += 0.15  # the kind of figure asked for: "384 staff" for "how many staff"
            if years and any(str(y) in quote for y in years):
                score += 0.05
            if len(quote) < 25 and not is_row:
                score -= 0.1
            cand.score = score
            out.append(cand)
    out.sort(key=lambda c: -c.score)
    return out
