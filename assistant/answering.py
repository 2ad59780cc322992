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

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llama_index.core.schema import NodeWithScore, TextNode

from assistant.evidence import (Candidate, IdfTable, apart_from_best, brackets_are_notation, cell_value, same_evidence,
                                score_candidates, split_spans, table_context, year_support)
from assistant.gloss import english_gloss
from assistant.lexical import STOPWORDS, index_tokens, stem, token_set
from assistant.names import only_listed
from assistant.query import ASKS_CHANGE, CHANGE, COMPARISON, PERCENT, RANKED, QueryPlan, part_plan
from assistant.ranker import ANSWER_SPANS, Ranker
from assistant.records import Answer, Citation, DocumentInfo, PassageOut
from assistant.scopes import Scope
from assistant.tables import COUNTS, row_cells
from assistant.text import (FIGURE, FOOTNOTE, SUPERSCRIPTS, TIME, YEAR, figure_phrase, figure_value, figures_in,
                            format_number, is_reference, note_marks, numbers_in, on_footnote_line, sentence_spans,
                            states_figure)

VALUE = re.compile(r"[(\-–]?\s*[\d][\d\s,.]*\)?\s*%?|[-–]")  # a cell that is a figure, not a label


LIST_MARK = re.compile(r"(?:^|\n)[ \t]*(?:\d{1,2}[.)]|[a-z][.)]|[-•*–])[ \t]*$")
"""What opens a line that is an item of a list: "1.", "a)", "-"."""


ITEM_OPENS = re.compile(r"(?:\d{1,2}[.)]|[a-z][.)]|[-•*–])\s")
"""A span that starts with its own list mark ("- a. Applying ...")."""
MAX_ITEMS = 8
"""The items of a list an answer quotes."""


def _line_before(text: str, span: str) -> str | None:
    """What stands before ``span`` on its line in ``text`` (None: not in it)."""
    at = text.find(span)
    return None if at < 0 else text[text.rfind("\n", 0, at) + 1: at]


def opens_list(quote: str) -> bool:
    """Does the span open a list ("... are:"), alone or as a window with the list's first item?"""
    spans = sentence_spans(quote)
    return quote.rstrip().endswith(":") or any(quote[a:b].rstrip().endswith(":") for a, b in spans[:-1])


def is_item(text: str, span: str) -> bool:
    """Is ``span`` (a span of ``text``) an item of a list: on a line of its own, after or with a list mark."""
    before = _line_before(text, span)
    return before is not None and (bool(LIST_MARK.search(before)) or (not before.strip() and bool(ITEM_OPENS.match(span))))


BULLET_MARK = re.compile(r"^\s*[-•*–▪●]\s*")
ITEM_CHARS = 140
"""The most of an item a list's lead names (the item's claim quotes it whole)."""


def noted(text: str, mark: str) -> str | None:
    """What footnote ``mark`` annotates in ``text``: the words before it in the sentence citing it
    ("... avstamp i MOPAN⁵-utvärderingen" -> "avstamp i MOPAN⁵-utvärderingen")."""
    for a, b in sentence_spans(text):
        sentence = text[a:b]
        if FOOTNOTE.match(sentence) or mark not in note_marks(sentence):
            continue
        m = re.search(rf"(?:\S+\s+){{0,3}}\S*?(?<![{SUPERSCRIPTS}]){mark}(?![{SUPERSCRIPTS}])\S*", sentence)
        if m:
            return " ".join(m.group(0).split()).rstrip(",;:.")
    return None


def item_text(span: str) -> str:
    """A list item as a lead names it: without its bullet and closing punctuation ("- a. Applying X;" ->
    "a. Applying X"); a bare mark ("1.") is nothing."""
    text = BULLET_MARK.sub("", " ".join(span.split())).rstrip(" ;,.")
    if re.fullmatch(r"(?:\d{1,2}|[a-z]|[ivx]{1,4})[.)]?", text, re.I):
        return ""
    return text if len(text) <= ITEM_CHARS else text[:ITEM_CHARS].rsplit(" ", 1)[0] + " …"


def in_footnote(text: str, span: str) -> bool:
    """Is ``span`` (a span of ``text``) part of a footnote (which a page may put between a list's
    items): on a line that opens with a footnote mark."""
    at = text.find(span)
    return at >= 0 and on_footnote_line(text, at)


@dataclass(frozen=True)
class AnswerPolicy:
    threshold: float | None = None
    """Probability the best span needs to be stated; None: the ranker's own (chosen by cross-validation)."""
    max_claims: int = 3
    """The lead and at most two supporting claims."""
    support_margin: float = 2.0
    """A supporting claim's ranking score may be at most this far below the lead's."""
    sentence_windows: bool = True
    """Two sentences in a row are a candidate too (``evidence.sentence_windows``)."""
    require_asked_kind: bool = True
    """A question asking for a count, an amount or a share ("how many", "how much", "what share")
    is refused when none of the claims states a figure, one asking when when none states a time:
    the evidence lacks what is asked (``states_asked_kind``)."""


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
    cells = row_cells(cand.quote, header)
    head = header.split("\t")
    width = max(len(cells), len(head))  # extraction may drop empty leading cells: right-align the columns
    cells, head = [""] * (width - len(cells)) + cells, [""] * (width - len(head)) + head
    currency, scale = cand.node.metadata.get("currency"), cand.node.metadata.get("scale")
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
    ranks = [p for p in pairs if "rank" in p[0].lower()]  # said as "ranked 11th" whatever is asked
    figures = [p for p in pairs if p not in ranks]
    best = max((p[2] for p in figures), default=0)
    totals = [p for p in figures if p[0].lower() == "total"]
    in_period = [p for p in figures if plan.period and (y := YEAR.search(p[0])) and
                 plan.period[0] <= int(y.group(1)) <= plan.period[1]]
    in_year = [p for p in figures if YEAR.fullmatch(p[0]) and int(p[0]) in plan.years]  # a year's column
    if plan.extreme and len(in_period) >= 2:  # "which year between 2013 and 2017 the most"
        pick = max if plan.extreme == "max" else min
        chosen = [pick(in_period, key=lambda p: cell_value(p[1]) or 0.0)] + totals
    elif totals and ("total" in qtok or len(in_period) >= 2):  # a period asked as a whole: its total
        chosen = totals
    elif in_year and not plan.period:
        chosen = in_year
    elif best > 0:
        chosen = [p for p in figures if p[2] == best]
    else:
        chosen = totals or figures
    parts = [f"ranked {_ordinal(v)}" for _, v, _ in ranks]
    plain = brackets_are_notation(split_spans(cand.node), header)
    for h, v, _ in chosen:
        value = format_number(v.strip("() ") if plain else v)
        money = (currency and (scale or re.search(r"\d{3}", re.sub(r"\D", "", v))) and "%" not in v
                 and not COUNTS.search(label or ""))
        amount = f"{currency} {value}" + (f" {scale}" if scale else "") if money else value
        parts.append(f"{h or 'value'}: {amount}")
    lead = "; ".join(parts)
    return f"{lead} ({label})" if label else lead


YEAR_BEFORE = re.compile(rf"{YEAR.pattern}\s*:\s*$")
YEAR_AFTER = re.compile(rf"^\s*(?:[A-Za-zÅÄÖåäö-]+\s+){{0,2}}?(?:in|during|i|under)\s+{YEAR.pattern}(?!\s*[-–])")


def figure_year(sentence: str, start: int, end: int) -> int | None:
    """The year a figure is stated for, when the sentence labels it: "2018: USD 97.2 million",
    "60 offices in 2019"."""
    m = YEAR_BEFORE.search(sentence[max(0, start - 12):start]) or YEAR_AFTER.match(sentence[end:end + 40])
    return int(m.group(1)) if m else None


def lead_figure(sentence: str, plan: QueryPlan) -> str | None:
    """The number (with its unit) in a sentence to state first: of the asked kind ("how many staff",
    "how much") when the question says, else nearest to the question's terms. Years, labels
    ("Annex 3", "P-5") and figures the question itself names are not answers."""
    qtok = set(plan.tokens)
    asked = set(numbers_in(plan.question))
    kind = [m.span() for m in plan.figure.finditer(sentence)] if plan.figure else []
    own = sentence_spans(sentence)  # in a window of two sentences, the words of the figure's own count too
    best, best_score = None, -1.0
    for m in FIGURE.finditer(sentence):
        value = m.group(0).strip(" ,.")
        if YEAR.fullmatch(value) or set(numbers_in(value)) & asked or is_reference(sentence, m.start()):
            continue
        if plan.figure not in (None, PERCENT, CHANGE) and PERCENT.fullmatch(value):
            continue  # a share does not say how many or how much
        own_year = figure_year(sentence, m.start(), m.end())
        if plan.years and own_year and own_year not in plan.years:
            continue  # "(2018: USD 97.2 million)" in a sentence about 2019
        window = sentence[max(0, m.start() - 60): m.end() + 60]
        home = next((sentence[a:b] for a, b in own if a <= m.start() < b), window)
        score = (len(qtok & token_set(window, "en")) + 0.5 * len(qtok & token_set(home, "en"))
                 + 10 * any(a <= m.start() < b for a, b in kind))
        if score > best_score:
            best, best_score = value, score
    return best if best_score >= 2 else None


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
                 span_similarity: Callable[[QueryPlan], Callable[[str, int], np.ndarray | None]] | None = None,
                 next_passage: Callable[[str], TextNode | None] | None = None):
        """``span_similarity(plan)``: how the question's vector compares with the spans of a passage
        (``PassageStore.span_similarity`` of the query vector); ``next_passage(id)``: the passage
        after it in its document, where a list that ends a passage runs on."""
        self.idf = idf
        self.span_similarity = span_similarity
        self.next_passage = next_passage
        self.documents = {d.id: d for d in documents}
        self.doc_years = {d.id: d.years for d in documents}
        self.ranker = ranker
        self.policy = policy or AnswerPolicy()
        self.threshold = self.policy.threshold if self.policy.threshold is not None else ranker.threshold

    def commonness(self, english: str) -> float:
        """How common an English word or phrase is in the passages (its rarest word's idf, negated):
        of a Swedish word's senses, the rendering takes the corpus's own."""
        return -max((self.idf.idf.get(stem(w), self.idf.default) for w in english.split()), default=self.idf.default)

    def candidates(self, plan: QueryPlan, retrieved: list[NodeWithScore]) -> list[Candidate]:
        """Every span of the retrieved passages, best first by the ranker's score."""
        name_tokens = [t for n in plan.names for t in index_tokens(n, "en")]
        similarity = self.span_similarity(plan) if self.span_similarity else None
        cands = score_candidates(plan, retrieved, self.idf, self.doc_years, name_tokens, similarity,
                                 self.policy.sentence_windows)
        for c in cands:
            c.score = self.ranker.score(c.features)
        cands.sort(key=lambda c: -c.score)
        return cands

    def part_candidates(self, plan: QueryPlan, retrieved: list[NodeWithScore]) -> list[list[Candidate]]:
        """For a question that asks several things, the ranked spans for each thing it asks."""
        return [self.candidates(part_plan(plan, p), retrieved) for p in plan.parts]

    def answerable(self, cands: list[Candidate]) -> float:
        """The probability that stating the best span answers the question (beside the spans apart from it)."""
        ranked = [cands[i] for i in apart_from_best([c.quote for c in cands[:3 * ANSWER_SPANS]])]
        return self.ranker.answer_probability([(c.features, c.score) for c in ranked[:ANSWER_SPANS]])

    def answer(self, question: str, plan: QueryPlan, retrieved: list[NodeWithScore]) -> Answer:
        passages = [to_passage_out(h) for h in retrieved]
        cands = self.candidates(plan, retrieved)
        if self.answerable(cands) < self.threshold:
            return Answer(answer=self.refusal(plan, cands, passages), answered=False, passages=passages)
        claims, text = self.compose(cands, plan, self.part_candidates(plan, retrieved))
        if self.policy.require_asked_kind and not self.states_asked_kind(plan, claims):
            return Answer(answer=self.refusal(plan, cands, passages), answered=False, passages=passages)
        citations = [Citation(n=n, passage_id=c.node.node_id, document_id=c.document_id, title=c.node.metadata["title"],
                              page=c.node.metadata.get("page"), section=c.node.metadata.get("section"), quote=c.quote)
                     for n, c in enumerate(claims, start=1)]
        return Answer(answer=text, answered=True, citations=citations, passages=passages)

    @staticmethod
    def states_asked_kind(plan: QueryPlan, claims: list[Candidate]) -> bool:
        """A question asking for a count, an amount or a share gets a figure, and not one of a group
        its name is only listed in ("11 donors (Austria, ..., Norway, ...) provided USD 28.5 million");
        one asking when gets a time (``TIME``); else the evidence lacks what is asked."""
        if plan.figure and not any(states_figure(c.quote) for c in claims):
            return False
        if plan.figure and plan.names and not any(c.is_row for c in claims) and all(
                any(only_listed(n, c.quote) for n in plan.names) for c in claims):
            return False  # the name is one of a group the figure is about
        return not plan.asks_time or any(TIME.search(c.quote) for c in claims)

    def compose(self, cands: list[Candidate], plan: QueryPlan,
                parts: list[list[Candidate]] = ()) -> tuple[list[Candidate], str]:
        """The claims an answer states from ranked candidates (and those of each thing the question
        asks, ``part_candidates``), and its text (claim ``n`` marked ``[n]``)."""
        claims = [self.own_sentence(c, plan) for c in self.kind_first(self.select_claims(cands, plan, parts), plan)]
        periods: list[int | None] = [None] * len(claims)
        if plan.scopes:  # each side in the order the question asks them, with its year
            side = [next((i for i, s in enumerate(plan.scopes) if self.in_scope(c, s)), len(plan.scopes)) for c in claims]
            order = sorted(range(len(claims)), key=lambda i: side[i])
            claims = [claims[i] for i in order]
            periods = [plan.scopes[side[i]].year if side[i] < len(plan.scopes) else None for i in order]
        asks: dict[int, list[QueryPlan]] = {}  # a claim -> the things asked it answers (one span may answer two)
        for q, part in zip(plan.parts, parts):
            answering = next((k for k in claims if part and same_evidence(part[0].quote, k.quote)), None)
            if answering is not None:
                asks.setdefault(id(answering), []).append(part_plan(plan, q))
        lead = self.lead(claims, periods, plan, asks) or self.list_lead(claims)
        lines = [self.claim_text(c, asks.get(id(c), [plan])[0],
                                 not lead and (n == 1 or bool(plan.scopes) or id(c) in asks), period) + f" [{n}]"
                 for n, (c, period) in enumerate(zip(claims, periods), start=1)]
        change = self.change(claims, periods, plan)
        return claims, "\n\n".join(([lead] if lead else []) + lines + ([change] if change else []))

    def lead(self, claims: list[Candidate], periods: list[int | None], plan: QueryPlan,
             asks: dict[int, list[QueryPlan]]) -> str | None:
        """For a question that asks for several figures (its parts, or its sides: years, documents),
        one first sentence stating each, citing each: "**136** security training sessions and
        **2,839** UNSMS [1][2]." None when fewer than two of its answers state a figure (sides: any
        figure, as ``change``; the rest: a figure of the kind asked, by the part or the whole question)."""
        if not (plan.scopes or asks):
            return None
        first = part_plan(plan, plan.parts[0]) if plan.parts else plan  # the first thing asked, first
        stated: list[tuple[str, int]] = []
        sides: set[int | str] = set()  # a side's (year's, document's) first claim answers it; later ones support
        for n, (c, period) in enumerate(zip(claims, periods), start=1):
            side = period or c.document_id
            is_side = bool(plan.scopes) and side not in sides
            answers = asks.get(id(c), [])
            if n == 1 or is_side:  # the best claim answers the first thing asked; a side's, the same measure
                answers = [first, *(a for a in answers if a.question != first.question)]
            if not answers:
                continue
            sides.add(side)
            quote = " ".join(c.quote.split())
            for ask in answers:
                if c.is_row:  # a row states its figure in the asked column: "2017: 1,467 (Total)"
                    described = describe_row(c, ask)
                    if described:
                        phrase = f"**{described}**" + (f" in {period}" if period and str(period) not in described else "")
                        if all(phrase != p for p, _ in stated):
                            stated.append((phrase, n))
                    continue
                wanted = [a for a in (ask, plan) if a.wants_number or plan.scopes]
                figure = next((f for a in wanted if (f := lead_figure(quote, a))), None)
                if not figure:  # this answer is stated by its quote below
                    continue
                shown = format_number(figure) if figure[0].isdigit() else figure
                counted = figure_phrase(quote, figure, STOPWORDS)[len(figure):]
                if c.node.metadata.get("language") == "sv" and not plan.swedish:
                    shown, counted = (english_gloss(t, self.commonness) if t.strip() else t for t in (shown, counted))
                phrase = f"**{shown}**{counted}" + (f" in {period}" if period else "")
                if all(phrase != p for p, _ in stated):
                    stated.append((phrase, n))
        if len(stated) < 2:
            return None
        said = [p for p, _ in stated]
        return f"{', '.join(said[:-1])} and {said[-1]} " + "".join(f"[{n}]" for n in dict.fromkeys(n for _, n in stated)) + "."

    @staticmethod
    def list_lead(claims: list[Candidate]) -> str | None:
        """For a list the best span opens, one first sentence naming its items, each citing its claim:
        "1. Enhanced ...; 2. Development ...; ... [1][2][3]." None for fewer than two items."""
        opener = claims[0]
        if not opens_list(opener.quote):
            return None
        spans = sentence_spans(opener.quote)
        colon = next((i for i, (a, b) in enumerate(spans) if opener.quote[a:b].rstrip().endswith(":")), len(spans))
        items = [(1, opener.quote[a:b]) for a, b in spans[colon + 1:]]  # a window holds the first item
        items += [(n, c.quote) for n, c in enumerate(claims[1:], start=2) if is_item(c.node.text, c.quote)]
        named = [(n, t) for n, q in items if (t := item_text(q))]
        if len(named) < 2:
            return None
        return "; ".join(t for _, t in named) + " " + "".join(f"[{n}]" for n in dict.fromkeys(n for n, _ in named)) + "."

    def kind_first(self, claims: list[Candidate], plan: QueryPlan) -> list[Candidate]:
        """The first claim that states the kind of figure asked (a rank, or ``plan.figure``: a share,
        a count of the asked noun, money) leads, when the best one does not. Sides, parts, lists and
        questions asking the size of a change (a percentage or an amount) keep their order."""
        kind = RANKED if plan.asks_rank else None if ASKS_CHANGE.search(plan.question) else plan.figure
        if not kind or plan.scopes or plan.parts or claims[0].quote.rstrip().endswith(":"):
            return claims
        i = next((i for i, c in enumerate(claims) if kind.search(self.claim_text(c, plan, True))), 0)
        return [claims[i], *claims[:i], *claims[i + 1:]]

    @staticmethod
    def own_sentence(c: Candidate, plan: QueryPlan) -> Candidate:
        """A window of two sentences whose other sentence states figures of its own ("In Latin America
        ... USD 4,184,957 ... In Asia and Oceania ... USD 5,980,339."): just the sentence holding the
        figure it answers with, so the answer does not quote a neighbouring figure. Only for a question
        asking one figure: of one asking several, the other sentence may state another."""
        one = plan.wants_number and not plan.parts and not plan.scopes and len(plan.years) <= 1
        figure = lead_figure(c.quote, plan) if one and c.features.get("window") else None
        spans = [c.quote[a:b] for a, b in sentence_spans(c.quote)]
        home = [q for q in spans if figure and figure in q]
        if len(home) != 1 or not figures_in(" ".join(q for q in spans if q is not home[0])):
            return c
        return Candidate(c.node, c.rank, c.passage_score, home[0], c.is_row, c.features, c.score)

    def change(self, claims: list[Candidate], periods: list[int | None], plan: QueryPlan) -> str | None:
        """For two years' figures of the same measure and unit, the comparison: "From 13,500 in 2019 [1] to 19,400
        in 2020 [2]: up 5,900." Only the first two sides with a stated figure each."""
        sides = []
        for n, (c, year) in enumerate(zip(claims, periods), start=1):
            figure = lead_figure(c.quote, plan) if year and not c.is_row else None
            value = figure_value(figure) if figure else None
            if value:
                sides.append((year, value, format_number(figure) if figure[0].isdigit() else figure, n))
        if len(sides) < 2 or sides[0][0] == sides[1][0] or sides[0][1][1] != sides[1][1][1]:
            return None
        a, b = (token_set(re.sub(r"\d", " ", claims[n - 1].quote), "en") for *_, n in sides[:2])
        if len(a & b) < 0.5 * len(a | b):  # two figures of the same measure, not any two
            return None
        (y1, (v1, unit), f1, n1), (y2, (v2, _), f2, n2) = sorted(sides[:2])
        if v1 == v2:
            return f"Unchanged: {f1} in {y1} [{n1}] and {f2} in {y2} [{n2}]."
        delta = abs(v2 - v1)
        step = "percentage points" if unit == "%" else (unit + " " if unit else "")
        amount = f"{delta:,.2f}".rstrip("0").rstrip(".")
        said = f"{amount} {step}".strip() if unit == "%" else f"{step}{amount}"
        return f"From {f1} in {y1} [{n1}] to {f2} in {y2} [{n2}]: {'up' if v2 > v1 else 'down'} {said}."

    def select_claims(self, cands: list[Candidate], plan: QueryPlan,
                      parts: list[list[Candidate]] = ()) -> list[Candidate]:
        """The best span; the best span for each further thing the question asks, when it answers it;
        one span per side of a question about several years or documents; for a comparison, the best
        span of each other document; one span per further asked year; then close runners-up about the
        same document and period, or else the items of a list the best span opens."""
        best = cands[0]
        claims = [best]
        for part in parts:
            top = part[0] if part else None
            if (top is not None and len(claims) < self.policy.max_claims and self.answerable(part) >= self.threshold
                    and not any(same_evidence(top.quote, k.quote) for k in claims)):
                claims.append(top)
        marks = set(note_marks(best.quote))  # the best span's own footnotes qualify it ("preliminary and unaudited")
        for c in cands[1:60]:
            if (len(claims) < self.policy.max_claims and c.node is best.node and (m := FOOTNOTE.match(c.quote))
                    and m.group(1) in marks):
                claims.append(c)
        good = [c for c in cands[1:30] if best.score - c.score <= self.policy.support_margin
                and c.features["names_missing"] <= best.features["names_missing"]]

        def overlaps(c: Candidate) -> bool:
            """Same words, or a second row of a table already quoted (one row answers; more are noise)."""
            return any(same_evidence(c.quote, k.quote)
                       or (c.is_row and k.is_row and c.node.metadata.get("section") == k.node.metadata.get("section"))
                       for k in claims)

        for scope in plan.scopes:  # each side of the question from its own evidence
            if len(claims) < self.policy.max_claims and not any(self.in_scope(k, scope) for k in claims):
                side = next((c for c in cands[1:40] if self.in_scope(c, scope) and not overlaps(c)
                             and best.score - c.score <= 2 * self.policy.support_margin), None)
                if side:
                    claims.append(side)
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
        if opens_list(best.quote):  # its items support it, not runners-up
            return claims + [item for item in self.list_items(best)[:MAX_ITEMS] if not any(item.quote == k.quote for k in claims)]
        for c in good:
            if len(claims) >= self.policy.max_claims:
                break
            if c.document_id == best.document_id and c.features["year_elsewhere"] == 0 and not overlaps(c):
                claims.append(c)
        return claims

    def list_items(self, opener: Candidate) -> list[Candidate]:
        """The spans after one that opens a list ("... are:"); when the list runs to the end of its
        passage (or the opener ends it), also the items that open the passages after it, past a further
        opener ("Among others, these include:") and footnotes."""
        spans = [q for q, _ in split_spans(opener.node)]
        last = next((q for q in spans if opener.quote.endswith(q)), None)  # a window: its second sentence
        if last is None:
            return []
        items = [Candidate(opener.node, opener.rank, opener.passage_score, q, False)
                 for q in spans[spans.index(last) + 1:] if not in_footnote(opener.node.text, q)]
        node, running = opener.node, not items or is_item(opener.node.text, items[-1].quote)
        while running and len(items) < MAX_ITEMS and self.next_passage and (node := self.next_passage(node.node_id)):
            for q, _ in split_spans(node):
                if is_item(node.text, q):
                    items.append(Candidate(node, opener.rank, opener.passage_score, q, False))
                elif in_footnote(node.text, q):
                    continue
                elif items or not q.rstrip().endswith(":"):  # before the items, a further opener may stand
                    running = False
                    break
        return items

    def in_scope(self, c: Candidate, scope: Scope) -> bool:
        """Is the span evidence for this side: from its documents, and about its year (or about no
        other year, in a document that covers it)?"""
        if c.document_id not in scope.documents:
            return False
        return scope.year is None or year_support(c.quote, table_context(c.node), [scope.year],
                                                  self.doc_years.get(c.document_id), c.is_row) > 0

    def claim_text(self, c: Candidate, plan: QueryPlan, state_figure: bool, period: int | None = None) -> str:
        """The claim as stated: a row's figure in the asked column, or the quote (rendered in English
        for a Swedish span and an English question) after its figure; ``period``: the year the claim
        is about, said when the span does not say it."""
        md = c.node.metadata
        said = f" ({period})" if period and str(period) not in c.quote else ""
        where = md.get("section") or md.get("title")
        if c.is_row:
            described = describe_row(c, plan)
            if described:
                return f"**{described}**{said}, per {where}."
        quote = " ".join(c.quote.split())
        rendered = f"“{quote}”"
        if md.get("language") == "sv" and not plan.swedish:
            rendered = f"{english_gloss(quote, self.commonness)} (Swedish: “{quote}”)"
        note = FOOTNOTE.match(c.quote)
        on = noted(c.node.text, note.group(1)) if note else None
        if on:  # a footnote says what it is a note to
            rendered = f"{rendered}, {'fotnoten till' if plan.swedish else 'the note to'} “{on}”"
        if plan.wants_number and state_figure:
            figure = lead_figure(quote, plan)
            if figure:
                return f"**{format_number(figure) if figure[0].isdigit() else figure}**{said}: {rendered}"
        return f"{period}: {rendered}" if said else rendered

    def refusal(self, plan: QueryPlan, cands: list[Candidate], passages: list[PassageOut]) -> str:
        """Say so, and what the documents do cover when the evidence is about another year."""
        text = "The documents do not contain the answer to this question."
        asked = {str(y) for y in plan.years}
        about = [c for c in cands[:10] if c.features.get("year_elsewhere") and c.features["cov"] >= 0.6]
        # the most about what is asked: a value in the asked column, the question's words
        near = max(about, key=lambda c: (c.features["column"], c.features["own_cov"], c.score), default=None)
        if near is not None:
            other = sorted(set(YEAR.findall(near.quote + " " + (near.node.metadata.get("section") or ""))) - asked)
            if other:
                md = near.node.metadata
                where = ", ".join(x for x in (md["title"], md.get("section")) if x)
                text = (f"The documents do not contain the answer for {', '.join(sorted(asked))}. They give it only for "
                        f"{', '.join(other)}: “{' '.join(near.quote.split())}” ({where}).")
        if passages:
            places: dict[str, list[str]] = {}  # each document once, with where in it
            for p in passages[:3]:
                spot = f"p. {p.page}" if p.page else p.section
                spots = places.setdefault(p.title, [])
                if spot and spot not in spots:
                    spots.append(spot)
            closest = "; ".join(title + (f" ({'; '.join(spots)})" if spots else "") for title, spots in places.items())
            text += f" The closest passages are from: {closest}."
        return text
