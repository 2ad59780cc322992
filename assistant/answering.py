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

from assistant.evidence import Candidate, IdfTable, score_candidates
from assistant.lexical import index_tokens, words
from assistant.query import QueryPlan
from assistant.records import Answer, Citation, PassageOut

NUMBER_QUESTION = re.compile(
    r"\b(how (much|many|large|big)|what (amount|share|percentage|proportion|number|figure|sum|total)|"
    r"budget|funding|fund|contribut\w*|gave|give|spent|cost|revenue|income|expenditure|rank\w*|"
    r"hur (mycket|många|stor)|belopp|miljoner|procent)\b",
    re.I,
)
GENERIC_NAMES = {
    "iom", "what", "which", "how", "who", "when", "where", "did", "does", "is", "are", "was", "the", "in", "un",
    "according", "under", "and", "list", "name", "give", "tell", "vad", "vilka", "vilken", "hur", "när", "enligt",
    "annex", "table", "report", "strategy", "covid", "organization", "international", "migration", "usd",
}


@dataclass(frozen=True)
class AnswerPolicy:
    threshold: float = 0.5
    max_claims: int = 3
    claim_ratio: float = 0.8


def format_number(raw: str) -> str:
    """``3 508 772`` / ``(3,508,772.00)`` -> ``3,508,772`` (a negative in brackets keeps its sign)."""
    s = raw.strip()
    negative = s.startswith("(") and s.endswith(")") or s.startswith("-")
    digits = re.sub(r"[()\s\u00a0,-]", "", s)
    if re.fullmatch(r"\d+(\.\d+)?", digits) and not re.fullmatch(r"(19|20)\d\d", digits):
        whole, _, frac = digits.partition(".")
        text = f"{int(whole):,}" + (f".{frac}" if frac and set(frac) != {"0"} else "")
        return f"-{text}" if negative else text
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
    raw_cells = cand.quote.split("\t")
    head = header.split("\t")
    if len(raw_cells) != len(head):
        # The header lost its empty leading cells in extraction: right-align the columns.
        cells = [c.strip() for c in raw_cells]
        if len(cells) > len(head):
            head = [""] * (len(cells) - len(head)) + head
        else:
            cells = [""] * (len(head) - len(cells)) + cells
    else:
        cells = [c.strip() for c in raw_cells]
    currency = cand.node.metadata.get("currency")
    label_idx = next((i for i, c in enumerate(cells) if c and not re.search(r"\d", c)), None)
    label = cells[label_idx] if label_idx is not None else None
    qtok = set(plan.tokens)
    pairs: list[tuple[str, str, float]] = []
    for i, (h, v) in enumerate(zip(head, cells)):
        if not v or i == label_idx:
            continue
        match = len(qtok & set(index_tokens(h, "en"))) + (1.5 if any(str(y) == h.strip() for y in plan.years) else 0)
        pairs.append((h.strip(), v, match))
    if not pairs:
        return None
    best = max(p[2] for p in pairs)
    if best > 0:
        chosen = [p for p in pairs if p[2] == best]
    else:
        totals = [p for p in pairs if p[0].lower() == "total"]
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
        window = sentence[max(0, m.start() - 80): m.end() + 80]
        score = len(qtok & set(index_tokens(window, "en")))
        if score > best_score:
            best, best_score = value, score
    return best


def _named_terms(question: str) -> list[str]:
    """Capitalised names in the question (not its first word), which an answer's evidence must mention."""
    names = []
    for i, m in enumerate(re.finditer(r"\b[A-ZÅÄÖ][\wåäöÅÄÖ'’-]+", question)):
        w = m.group(0).lower().rstrip("'’s").split("'")[0]
        if m.start() == 0 or w in GENERIC_NAMES or len(w) < 3:
            continue
        names.append(w)
    return names


def _mentions(name: str, text: str) -> bool:
    stem = name[:-1] if len(name) > 5 else name  # Denmark/Danish, Sweden/Swedish share no stem; see aliases
    aliases = {"danish": ["denmark", "danish", "danida"], "denmark": ["denmark", "danish", "danida"],
               "swedish": ["sweden", "swedish", "sverige", "svensk"], "sweden": ["sweden", "swedish", "sverige", "svensk"]}
    options = aliases.get(name, [stem])
    return any(o in text for o in options)


def confidence(best: Candidate, plan: QueryPlan, question: str, retrieved: list[NodeWithScore]) -> float:
    """0..1: how far the best evidence carries the question's terms, years and names."""
    conf = min(1.0, 0.35 + 0.9 * best.coverage)
    node = best.node
    text = (node.text + " " + str(node.metadata.get("section")) + " " + node.metadata.get("title", "")).lower()
    doc_years = node.metadata.get("year")
    if plan.years:
        in_text = any(str(y) in text for y in plan.years)
        if not in_text:
            conf -= 0.35
    for name in _named_terms(question):
        if not _mentions(name, text):
            conf -= 0.25
    return max(0.0, min(1.0, conf)) if doc_years is not None or True else conf


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
    def __init__(self, idf: IdfTable, policy: AnswerPolicy | None = None):
        self.idf = idf
        self.policy = policy or AnswerPolicy()

    def answer(self, question: str, plan: QueryPlan, retrieved: list[NodeWithScore]) -> Answer:
        passages = [to_passage_out(h) for h in retrieved]
        if not retrieved:
            return Answer(answer=self.refusal([]), answered=False, passages=passages)
        wants_number = bool(NUMBER_QUESTION.search(question))
        cands = score_candidates(plan.tokens, retrieved, self.idf, wants_number, plan.years)
        if not cands:
            return Answer(answer=self.refusal(passages), answered=False, passages=passages)
        best = cands[0]
        conf = confidence(best, plan, plan.question, retrieved)
        if conf < self.policy.threshold:
            return Answer(answer=self.refusal(passages), answered=False, passages=passages,
                          timings_ms={})
        claims = [best]
        for c in cands[1:]:
            if len(claims) >= self.policy.max_claims or c.score < self.policy.claim_ratio * best.score:
                break
            if any(c.quote == k.quote or c.quote in k.quote or k.quote in c.quote for k in claims):
                continue
            claims.append(c)
        citations = []
        lines = []
        for n, c in enumerate(claims, start=1):
            md = c.node.metadata
            citations.append(Citation(n=n, passage_id=c.node.node_id, document_id=md["document_id"], title=md["title"],
                                      page=md.get("page"), section=md.get("section"), quote=c.quote))
            lines.append(self.claim_text(c, plan, wants_number, first=n == 1) + f" [{n}]")
        return Answer(answer="\n\n".join(lines), answered=True, citations=citations, passages=passages)

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
