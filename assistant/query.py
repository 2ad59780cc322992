"""Query understanding without an LLM: years, named documents, typos, follow-ups.

Turns what a desk officer types ("and in 2019?", "the Swedish strategy", "staf costs") into
a ``QueryPlan`` the retriever can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assistant.conversation import resolve
from assistant.gloss import english_words, swedish_sense
from assistant.names import document_owners, name_words, named_terms
from assistant.lexical import STOPWORDS, gloss_english, gloss_swedish, looks_swedish, query_tokens, stem, words
from assistant.records import DocumentInfo, Turn
from assistant.scopes import Scope, question_scopes
from assistant.text import AMOUNT_WORDS, CURRENCY_CODES, ORDINALS, YEAR, relative_years, year_range

NOT_YEAR = re.compile(rf"\b(?:not|excluding|except|other than|inte)\s+(?:in\s+)?{YEAR.pattern}", re.I)

NUMBER_QUESTION = re.compile(
    r"\b(how (much|many|large|big)|what (amount|share|percentage|proportion|number|figure|sum|total)|"
    r"budget|funding|fund|contribut\w*|gave|give|spent|cost|revenue|income|expenditure|rank\w*|"
    r"hur (mycket|många|stor)|belopp|miljoner|procent)\b",
    re.I,
)
HOW_MANY = re.compile(r"\b(?:how many|number of|hur många|antal(?:et)?)\s+(?:\w+\s+){0,2}?([a-zåäö]{3,})", re.I)
HOW_MUCH = re.compile(r"\b(?:how much|what amount|hur mycket|vilket belopp)\b"
                      r"|^\W*(?:and\s+)?what\s+(?:did|does|do|will|has|have)\b[^?]{0,80}?"
                      r"\b(?:give|gave|contribute|pay|spend|donate)\b(?!\s+(?:priority|attention|emphasis|weight|rise|way))"
                      r"|^\W*(?:och\s+)?vad\s+(?:gav|betalade|bidrog)\b", re.I)
"""A question asking for an amount of money: "how much", "what did Denmark give IOM ...", "vad gav Sverige ..."."""
MONEY = re.compile(rf"(?:{CURRENCY_CODES}|US\$|\$)\s?\d|\d[\d ,.]*\s?(?:{AMOUNT_WORDS})", re.I)
WHEN = re.compile(r"^\s*(?:(?:and|och)\s+)?(?:when|när(?!\s+det\s+gäller))\b|\b(?:what|which|vilket)\s+(?:year|date|month|år|datum)\b",
                  re.I)
"""A question that asks for a time: "When did ...", "In which year ...", "När ..." (not "När det gäller": as regards)."""
WHAT_SHARE = re.compile(r"\b(?:what|which|how (?:large|big|high)(?: a)?)\s+(?:share|percentage|proportion|per ?cent|part)\b"
                        r"|\b(?:hur stor|vilken|hur många)\s+(?:andel|procent|del)\b", re.I)
ASKS_RANK = re.compile(r"\b(?:rank(?:ed|s)?|which place|what place|position|plats|placering|rankad)\b", re.I)
ASKS_CHANGE = re.compile(r"\bby how much\b|\bhow much\b.*\b(?:grow|grew|grown|increas\w*|ris\w*|rose|fell|fall\w*|"
                         r"decreas\w*|declin\w*|chang\w*)\b|\bmed hur mycket\b", re.I)
"""A question asking for the size of a change, which a percentage or an amount may state."""
RANKED = re.compile(r"\branked\s+\d+|\b\d+(?:st|nd|rd|th)\b|\b(?:"
                    + "|".join(w for w, n in ORDINALS.items() if w.isalpha() and n != "1") + r")\b", re.I)
"""A rank as a claim states it: "ranked 4th", "the 18th largest donor", "femte" ("first" is too
common a word to say a rank)."""
PERCENT = re.compile(r"\d[\d.,]*\s?(?:%|per\s?cent|percent|procent)", re.I)
CHANGE = re.compile(f"{PERCENT.pattern}|{MONEY.pattern}", re.I)
"""The size of a change: a percentage or an amount."""


MOST = re.compile(r"\b(largest|biggest|highest|most|greatest|top|main|leading|största|högsta|mest|flest)\b", re.I)
LEAST = re.compile(r"\b(smallest|lowest|least|fewest|minsta|lägsta|minst|färst)\b", re.I)


def superlative(question: str) -> str | None:
    """``max`` or ``min`` when the question asks for the largest or smallest item."""
    return "max" if MOST.search(question) else ("min" if LEAST.search(question) else None)


def asked_place(question: str) -> str | None:
    """The rank a question names ("fifth", "the 3rd", "åttonde") as a number; "first" says too little."""
    return next((ORDINALS[w] for w in words(question) if w in ORDINALS and ORDINALS[w] != "1"), None)


def figure_pattern(question: str) -> re.Pattern | None:
    """What the asked-for figure looks like in a sentence: a share (a percentage), the size of a
    change (a percentage or an amount), a count of the asked-for noun, or money."""
    if WHAT_SHARE.search(question):
        return PERCENT
    if ASKS_CHANGE.search(question):
        return CHANGE
    m = HOW_MANY.search(question)
    if m:
        noun = re.escape(m.group(1).lower()[:max(3, len(m.group(1)) - 2)])
        return re.compile(rf"\d[\d,. ]*\s+(?:[\w-]+\s+){{0,2}}{noun}", re.I)
    return MONEY if HOW_MUCH.search(question) else None


COMPARISON = re.compile(r"\b(compare\w*|agree\w*|differ\w*|versus|vs\.?|both|jämför\w*|skillnad\w*|överens)\b", re.I)
"""A question that compares ("compared with", "do they agree"): each side is stated."""

CLAUSE_BREAK = re.compile(
    r"\?\s+(?=\S)|,?\s+(?:and|but)\s+(?=(?:(?:from|in|for|to|at|by|with|on|of)\s+)?"
    r"(?:how|what|which|who|when|where|why|did|does|do|is|was|were|has|have|had)\b)"
    r"|,?\s+(?:och|men)\s+(?=(?:(?:från|i|för|till|med|av|på)\s+)?(?:hur|vad|vilk\w*|när|var|vem|varför)\b)",
    re.I,
)
"""Where a question asks a second thing: "..., and how many personnel were trained?", "... ? What did ..."."""


def question_parts(text: str) -> list[str]:
    """The questions a question asks, when it asks more than one (each of two words or more). One that
    only names another year ("..., and what about 2020?", "how does that compare with 2019?") asks the
    same again: a side of the question (``scopes``), not a question of its own."""
    parts = [p.strip(" ,?") for p in CLAUSE_BREAK.split(text)]
    parts = [p for p in parts if len(words(p)) >= 2
             and not all(YEAR.fullmatch(w) or w in STOPWORDS or COMPARISON.fullmatch(w) for w in words(p))]
    return parts if len(parts) > 1 else []


@dataclass
class QueryPlan:
    question: str
    """The question as asked, or rewritten from the conversation for a follow-up."""
    tokens: list[str]
    years: list[int] = field(default_factory=list)
    excluded_years: list[int] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    """Documents the question names; retrieval prefers them."""
    swedish: bool = False
    corrections: dict[str, str] = field(default_factory=dict)
    terms: list[frozenset[str]] = field(default_factory=list)
    """One set of equivalent index tokens per content word of the question (stems in both languages
    and glosses): evidence "has" the word when it has any token of its set."""
    context: str = ""
    """For a follow-up that asks something new: the previous turn's subject (``conversation``)."""
    context_terms: list[frozenset[str]] = field(default_factory=list)
    """Term groups of ``context`` that the question itself lacks; they weigh less."""
    wants_number: bool = False
    figure: re.Pattern | None = None
    """What the asked-for figure looks like, when the question says ("how many staff", "how much")."""
    names: list[str] = field(default_factory=list)
    """Names the evidence must be about (question, then context), lower-cased."""
    extreme: str | None = None
    """``max``/``min``: the question asks for the largest/smallest item (of a table)."""
    scopes: list[Scope] = field(default_factory=list)
    """The sides of a question about several years or documents (``scopes``); empty for one side."""
    period: tuple[int, int] | None = None
    """A span of years the question asks about as a whole ("over 2013-2017")."""
    parts: list[str] = field(default_factory=list)
    """The questions it asks, when it asks more than one ("how many sessions, and how many trained")."""
    asks_time: bool = False
    """It asks when (``WHEN``): an answer states a year, month, quarter or season."""
    asks_rank: bool = False
    """It asks for a rank (``ASKS_RANK``): "where did Denmark rank?"."""
    ordinal: str | None = None
    """The place it asks about, as a number ("which donor came fifth": "5"); not "first", too common a word."""
    stated: frozenset[str] = frozenset()
    """For a follow-up, the figures the previous answer stated (``conversation.Resolved.stated``)."""
    step: int = 0
    """For a follow-up asking for a neighbouring row, how many rows along from the one stating
    ``stated`` (``conversation.row_step``)."""

    @property
    def search_text(self) -> str:
        """What is embedded for dense retrieval."""
        return f"{self.question} {self.context}".strip()


def part_plan(plan: QueryPlan, part: str) -> QueryPlan:
    """The plan of one of the questions a question asks: its own words, figure and names; the rest
    of the question (years, documents) as the whole's."""
    terms = term_groups(part, plan.swedish)
    own = {t for g in terms for t in g}
    return replace(plan, question=part, tokens=search_tokens(part, plan.swedish), terms=terms,
                   context_terms=[g for g in plan.terms + plan.context_terms if not g & own],
                   wants_number=bool(NUMBER_QUESTION.search(part)), figure=figure_pattern(part),
                   names=named_terms(part) or plan.names, extreme=superlative(part), scopes=[], parts=[],
                   asks_time=bool(WHEN.search(part)), asks_rank=bool(ASKS_RANK.search(part)),
                   ordinal=asked_place(part) or plan.ordinal)


def compound_gloss(w: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """English words for a Swedish compound the lexicons lack, from its parts ("hälsobedömningar":
    health assessment), of each part the sense the passages use; nothing for a listed or short word
    (or without the passages' vocabulary to choose senses by)."""
    if vocabulary is None or len(w) < 8 or gloss_swedish([w]):
        return []
    return words(swedish_sense(w, vocabulary.commonness) or "")


def search_tokens(text: str, swedish: bool, vocabulary: Vocabulary | None = None) -> list[str]:
    """``query_tokens``, the words passages use for a name it asks about that they never use as
    written ("UK": kingdom), and for a Swedish question the English of its compounds the lexicons lack."""
    tokens = query_tokens(text)
    unknown = [n for n in named_terms(text) if vocabulary is not None and not vocabulary.knows(n)]
    extra = [stem(f) for n in unknown for f in name_words(n)]
    if swedish:
        extra += [stem(g) for w in words(text) for g in compound_gloss(w, vocabulary)]
    return tokens + [t for t in dict.fromkeys(extra) if t not in tokens]


def term_groups(text: str, swedish: bool = False, vocabulary: Vocabulary | None = None) -> list[frozenset[str]]:
    groups: dict[str, frozenset[str]] = {}
    names = set(named_terms(text))
    for w in words(text):
        if w in STOPWORDS or len(w) < 2:
            continue
        group = {stem(w), stem(w, "sv")} | ({stem(f) for f in name_words(w)} if w in names else set())
        group |= {stem(g) for g in gloss_swedish([w]) + (compound_gloss(w, vocabulary) if swedish else [])}
        group |= {stem(g, "sv") for g in gloss_english([w])}
        if w in ORDINALS:  # "fifth": the row ranked 5
            group.add(ORDINALS[w])
        groups.setdefault(stem(w), frozenset(group))
    return list(groups.values())


MAX_TYPO_CANDIDATES = 12


@dataclass(frozen=True)
class Vocabulary:
    """The words of the passages, for typo correction: as a set, sorted, and the English words
    another form of which the passages have ("rank" beside "ranking"; but not "staf", though
    "staffing" stems to it: it is no word). Built once, when an index is loaded."""

    words: frozenset[str]
    choices: list[str]
    other_forms: frozenset[str]

    @classmethod
    def of(cls, ws: set[str] | frozenset[str]) -> "Vocabulary":
        stems = {stem(w) for w in ws}
        return cls(frozenset(ws), sorted(ws), frozenset(w for w in english_words() if stem(w) in stems))

    def knows(self, word: str) -> bool:
        return word in self.words or word in self.other_forms

    def commonness(self, english: str) -> float:
        """The share of an English phrase's words the passages have: of a Swedish word's senses,
        the passages' own ("hälsa": health, not greet)."""
        ws = words(english)
        return sum(self.knows(w) for w in ws) / len(ws) if ws else 0.0


def correct_typos(ws: list[str], vocabulary: Vocabulary) -> dict[str, str]:
    """Map unknown words (4+ letters, no form of them in the passages) to a vocabulary word one or
    two edits away."""
    fixes: dict[str, str] = {}
    unknown = [w for w in dict.fromkeys(ws) if not (len(w) < 4 or w[0].isdigit() or w in STOPWORDS or vocabulary.knows(w))]
    for w in unknown[:MAX_TYPO_CANDIDATES]:  # each look-up scans the vocabulary: a long question is capped
        limit = 1 if len(w) < 7 else 2
        best = process.extractOne(w, vocabulary.choices, scorer=Levenshtein.distance, score_cutoff=limit)
        if best:
            fixes[w] = best[0]
    return fixes


def route_documents(question: str, documents: list[DocumentInfo]) -> list[str]:
    """Document ids that the question names by one of their catalog aliases."""
    q = question.lower()
    named = [d.id for d in documents if any(a.lower() in q for a in d.aliases)]  # the catalog's aliases
    if named and ("strategy" in q or "strategi" in q):
        named = [i for i in named if next(d for d in documents if d.id == i).doc_type == "strategy"] or named
    if named and ("report" in q or "rapport" in q):
        named = [i for i in named if next(d for d in documents if d.id == i).doc_type == "annual_report"] or named
    years = [int(y) for y in YEAR.findall(q)]
    if len(set(named)) > 1 and years:
        by_year = [i for i in named if any(next(d for d in documents if d.id == i).covers(y) for y in years)]
        named = by_year or named
    return list(dict.fromkeys(named))



def plan_query(question: str, documents: list[DocumentInfo], vocabulary: Vocabulary,
               history: list[Turn] | None = None) -> QueryPlan:
    resolved = resolve(question, history)
    text, context = resolved.question, resolved.context
    excluded = [int(y) for y in NOT_YEAR.findall(text)]
    years = [int(y) for y in YEAR.findall(text) if int(y) not in excluded]
    years += [y for y in relative_years(text, years) + list(resolved.years) if y not in years]
    if not years and context:
        years = [int(y) for y in YEAR.findall(context)]
    fixes = correct_typos(words(text), vocabulary)
    fixed = text
    for wrong, right in fixes.items():
        fixed = re.sub(rf"\b{re.escape(wrong)}\b", right, fixed, flags=re.I)
    swedish = looks_swedish(text)
    terms = term_groups(fixed, swedish, vocabulary)
    own = {t for g in terms for t in g}
    context_terms = [g for g in term_groups(context, looks_swedish(context), vocabulary) if not g & own] if context else []
    tokens = search_tokens(fixed, swedish, vocabulary)
    if context:
        tokens += [t for t in query_tokens(context) if t not in tokens]
    named_documents = route_documents(text, documents) or (route_documents(context, documents) if context else [])
    owners = document_owners(text) if named_documents else set()  # "Sweden's strategy": the document, not a subject
    names = [n for n in named_terms(text) if n not in owners] or named_terms(context)
    return QueryPlan(
        question=text,
        tokens=tokens,
        years=years,
        excluded_years=excluded,
        documents=named_documents,
        swedish=swedish,
        corrections=fixes,
        terms=terms,
        context=context,
        context_terms=context_terms,
        wants_number=bool(NUMBER_QUESTION.search(text)),
        figure=figure_pattern(text),
        names=names,
        extreme=superlative(text),
        scopes=question_scopes(years, named_documents, documents),
        parts=question_parts(fixed),
        period=year_range(text),
        asks_time=bool(WHEN.search(text)),
        asks_rank=bool(ASKS_RANK.search(text)),
        ordinal=asked_place(text),
        stated=resolved.stated,
        step=resolved.step,
    )
