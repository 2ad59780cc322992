"""The default answerer: extractive, no LLM, no network.

It states the answer first (for a table row: the column the number sits in, with the currency
from the table or its document), quotes the sentence or row it comes from as a citation, and
refuses when the evidence does not carry the question's key terms or years. A confident
wrong number is the worst failure, so every rule here errs toward "the documents don't say".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_index.core.schema import NodeWithScore

from assistant.evidence import Candidate, IdfTable, group_weights, score_candidates, split_spans
from assistant.lexical import index_tokens, token_set
from assistant.query import QueryPlan
from assistant.records import Answer, Citation, DocumentInfo, PassageOut

NUMBER_QUESTION = re.compile(
    r"\b(how (much|many|large|big)|what (amount|share|percentage|proportion|number|figure|sum|total)|"
    r"budget|funding|fund|contribut\w*|gave|give|spent|cost|revenue|income|expenditure|rank\w*|"
    r"hur (mycket|många|stor)|belopp|miljoner|procent)\b",
    re.I,
)
HOW_MANY = re.compile(r"\b(?:how many|number of|hur många|antal(?:et)?)\s+(?:\w+\s+){0,2}?([a-zåäö]{3,})", re.I)
HOW_MUCH = re.compile(r"\b(?:how much|what amount|hur mycket|vilket belopp)\b", re.I)
MONEY = re.compile(r"(?:USD|SEK|DKK|CHF|EUR|US\$|\$)\s?\d|\d[\d ,.]*\s?(?:million|billion|miljoner|miljarder|kronor)", re.I)


def figure_pattern(question: str) -> re.Pattern | None:
    """What the asked-for figure looks like in a sentence: a count of the asked-for noun, or money."""
    m = HOW_MANY.search(question)
    if m:
        noun = re.escape(m.group(1).lower()[:max(3, len(m.group(1)) - 2)])
        return re.compile(rf"\d[\d,. ]*\s+(?:[\w-]+\s+){{0,2}}{noun}", re.I)
    return MONEY if HOW_MUCH.search(question) else None


GENERIC_NAMES = {
    "iom", "what", "which", "how", "who", "when", "where", "did", "does", "is", "are", "was", "the", "in", "un",
    "according", "under", "and", "list", "name", "give", "tell", "vad", "vilka", "vilken", "hur", "när", "enligt",
    "annex", "table", "report", "strategy", "covid", "organization", "international", "migration", "usd",
}


YEAR_IN_TEXT = re.compile(r"\b(19|20)\d\d\b")
VALUE = re.compile(r"[(\-–]?\s*[\d][\d\s,.]*\)?\s*%?|[-–]")  # a cell that is a figure, not a label


@dataclass(frozen=True)
class AnswerPolicy:
    threshold: float = 0.6
    max_claims: int = 4
    claim_ratio: float = 0.7


def format_number(raw: str) -> str:
    """``3 508 772`` -> ``3,508,772``; ``(128 410)`` -> ``(128,410)``: brackets stay, as the source has them
    (a refund in one table, a plain credit in another)."""
    s = raw.strip()
    digits = re.sub(r"[()\s\u00a0,-]", "", s)
    if re.fullmatch(r"\d+(\.\d+)?", digits) and not re.fullmatch(r"(19|20)\d\d", digits):
        whole, _, frac = digits.partition(".")
        text = f"{int(whole):,}" + (f".{frac}" if frac and set(frac) != {"0"} else "")
        return f"({text})" if s.startswith("(") else (f"-{text}" if s.startswith("-") else text)
    return s


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
    toks = list(re.finditer(r"(?:USD|SEK|DKK|CHF|EUR|US\$)?\s?\d[\d ,.]*(?:\s?(?:%|per cent|million|billion|miljoner|miljarder))?", sentence))
    if not toks:
        return None
    best, best_score = None, -1.0
    for m in toks:
        value = m.group(0).strip(" ,.")
        if re.fullmatch(r"(19|20)\d\d", value) or len(re.sub(r"\D", "", value)) == 0:
            continue
        window = sentence[max(0, m.start() - 60): m.end() + 60]
        score = len(qtok & token_set(window, "en"))
        if score > best_score:
            best, best_score = value, score
    return best if best_score >= 2 else None


def named_terms(question: str) -> list[str]:
    """Names in the question (capitalised words but the first, codes like RT0782), lower-cased."""
    names = []
    for m in re.finditer(r"\b[A-ZÅÄÖ][\wåäöÅÄÖ'’-]+|\b[A-Z]{2}\d{3,}\b", question):
        w = re.sub(r"['’]s?$", "", m.group(0)).lower()
        if m.start() == 0 or w in GENERIC_NAMES or len(w) < 3:
            continue
        names.append(w)
    return names


NAME_ALIASES = {
    "danish": ("denmark", "danish", "danida", "danmark"),
    "denmark": ("denmark", "danish", "danida", "danmark"),
    "swedish": ("sweden", "swedish", "sverige", "svensk"),
    "sweden": ("sweden", "swedish", "sverige", "svensk"),
}


def mentions(name: str, text: str) -> bool:
    return any(alias in text for alias in NAME_ALIASES.get(name, (name[:-1] if len(name) > 5 else name,)))


def term_coverage(groups: list[frozenset[str]], tokens: set[str], idf: IdfTable) -> float:
    """Share of the question's words (idf-weighted, see ``group_weights``) that ``tokens`` has."""
    if not groups:
        return 0.0
    weights = group_weights(groups, idf)
    found = sum(w for g, w in zip(groups, weights) if g & tokens)
    return found / sum(weights)


def year_support(quote: str, context: str, plan: QueryPlan, doc_years: tuple[int, int] | None,
                 is_row: bool = False) -> float:
    """1 when the asked year is in the evidence, 0.5 when the evidence names no year but its document
    covers it, 0 when the evidence is about other years. A table row's year is its table's (the title or
    a column), not one that happens to stand in the row's label ("the 2021 resettlement quota")."""
    if not plan.years:
        return 1.0
    if is_row and YEAR_IN_TEXT.search(context):
        quote = ""
    if any(re.search(rf"\b{y}\b", quote + " " + context) for y in plan.years):
        return 1.0
    if not YEAR_IN_TEXT.search(quote) and doc_years and any(doc_years[0] <= y <= doc_years[1] for y in plan.years):
        return 0.5
    return 0.0


def confidence(best: Candidate, plan: QueryPlan, idf: IdfTable, wants_number: bool, doc_years) -> float:
    """0..1: how far the best evidence carries the question's words, years and figures."""
    md = best.node.metadata
    lang = md.get("language", "en")
    context = " ".join(str(md.get(k) or "") for k in ("section", "table_header", "title"))
    local = token_set(best.quote + " " + context, lang)
    passage = local | token_set(best.node.text, lang)
    conf = 0.5 * term_coverage(plan.terms, passage, idf) + 0.5 * term_coverage(plan.terms, local, idf)
    conf *= 0.6 + 0.4 * year_support(best.quote, context, plan, doc_years, best.is_row)
    if wants_number and not best.has_number:
        conf *= 0.8
    local_text = (best.quote + " " + context).lower()
    if any(not mentions(n, local_text) for n in named_terms(plan.question)):
        conf *= 0.8  # the figure or claim is not about the name the question asks about
    return max(0.0, min(1.0, conf))


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
    def __init__(self, idf: IdfTable, documents: list[DocumentInfo], policy: AnswerPolicy | None = None):
        self.idf = idf
        self.documents = {d.id: d for d in documents}
        self.policy = policy or AnswerPolicy()

    def answer(self, question: str, plan: QueryPlan, retrieved: list[NodeWithScore]) -> Answer:
        passages = [to_passage_out(h) for h in retrieved]
        wants_number = bool(NUMBER_QUESTION.search(plan.question))
        names = named_terms(plan.question)
        name_tokens = [t for n in names for t in index_tokens(n, "en")]
        cands = score_candidates(plan.terms, retrieved, self.idf, wants_number, plan.years, name_tokens,
                                 figure_pattern(plan.question))
        # The best-scoring span that the confidence check accepts leads; the others may follow it.
        lead = next((i for i, c in enumerate(cands[:8]) if self.confidence(c, plan, wants_number) >= self.policy.threshold),
                    None)
        if lead is None:
            return Answer(answer=self.refusal(passages), answered=False, passages=passages)
        claims = self.select_claims([cands[lead]] + cands[lead + 1:], plan)
        citations, lines = [], []
        for n, c in enumerate(claims, start=1):
            md = c.node.metadata
            citations.append(Citation(n=n, passage_id=c.node.node_id, document_id=md["document_id"], title=md["title"],
                                      page=md.get("page"), section=md.get("section"), quote=c.quote))
            lines.append(self.claim_text(c, plan, wants_number, first=n == 1) + f" [{n}]")
        return Answer(answer="\n\n".join(lines), answered=True, citations=citations, passages=passages)

    def confidence(self, best: Candidate, plan: QueryPlan, wants_number: bool) -> float:
        doc = self.documents.get(best.node.metadata["document_id"])
        return confidence(best, plan, self.idf, wants_number, doc.years if doc else None)

    def select_claims(self, cands: list[Candidate], plan: QueryPlan) -> list[Candidate]:
        """The best span, then close runners-up (one per asked year first), then a list the best span opens."""
        best = cands[0]
        claims = [best]

        def overlaps(c: Candidate) -> bool:
            """Same words, or a second row of a table already quoted (one row answers; more are noise)."""
            return any(c.quote in k.quote or k.quote in c.quote
                       or (c.is_row and k.is_row and c.node.metadata.get("section") == k.node.metadata.get("section"))
                       for k in claims)

        for year in plan.years[1:]:
            if not any(str(year) in k.quote for k in claims):
                extra = next((c for c in cands[1:30] if str(year) in c.quote and c.score > 0.5 * best.score
                              and not overlaps(c)), None)
                if extra:
                    claims.append(extra)
        for c in cands[1:]:
            if len(claims) >= self.policy.max_claims or c.score < self.policy.claim_ratio * best.score:
                break
            if not overlaps(c):
                claims.append(c)
        if best.quote.rstrip().endswith(":"):
            spans = [q for q, _ in split_spans(best.node)]
            after = spans[spans.index(best.quote) + 1:] if best.quote in spans else []
            claims += [Candidate(best.node, best.rank, best.passage_score, q, False) for q in after[:8]
                       if not any(q == k.quote for k in claims)]
        return claims

    def claim_text(self, c: Candidate, plan: QueryPlan, wants_number: bool, first: bool) -> str:
        md = c.node.metadata
        where = md.get("section") or md.get("title")
        if c.is_row:
            described = describe_row(c, plan)
            if described:
                return f"**{described}**, per {where}."
        quote = " ".join(c.quote.split())
        if wants_number and first:
            figure = lead_figure(quote, plan)
            if figure:
                return f"**{figure}**: “{quote}”"
        return f"“{quote}”"

    @staticmethod
    def refusal(passages: list[PassageOut]) -> str:
        text = "The documents do not contain the answer to this question."
        if passages:
            closest = "; ".join(f"{p.title}" + (f", p. {p.page}" if p.page else "") for p in passages[:3])
            text += f" The closest passages are from: {closest}."
        return text
