"""Follow-ups resolved against the conversation, without an LLM.

A follow-up leans on the previous turn in one of two ways:

- **the same question again, with something swapped**: "And in 2019?", "What about Sweden?",
  "Och för Sverige?". It has no words of its own beyond the new year or name, so the previous
  question is asked again with the year or the name replaced;
- **a new question about the same subject**: "And where did Denmark rank?", "How much of that was
  earmarked?", "What about the Sudan one?". It keeps its own words; the previous question's
  subject (its words, names and years) and the lead of the previous answer come along as
  *context*: they steer retrieval and weigh less than the question's own words in the answer.

Only the last user question and the first claim of the last answer are read, capped, so a long
history costs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.lexical import STOPWORDS, words
from assistant.names import known_names
from assistant.records import Turn
from assistant.text import YEAR, figures_in, lead_text, relative_years, says_relative_year

MAX_CONTEXT_CHARS = 400
"""What is read of the previous question and of the previous answer's lead, each."""

FOLLOW_UP_OPENING = re.compile(
    r"^\s*(?:and|but|also|what about|how about|what of|same for|och|men|också|samma|vad gäller|hur är det med)\b",
    re.I,
)
# Words that point back at the previous turn's subject.
ANAPHORS = frozenset(
    """it its that those this these they them their there same one ones former latter above
    det den dess dessa detta denna de dem deras där samma""".split()
)
CONNECTIVES = frozenset("and but also about what how then och men också gäller då".split())
NAME = re.compile(r"\b[A-ZÅÄÖ][\wåäöÅÄÖ'’-]+(?:\s+[A-ZÅÄÖ][\wåäöÅÄÖ'’-]+)*")
"""A name: one or more capitalised words in a row ("United States", "P-4")."""


AFTER = re.compile(r"\b(?:after|below|behind|next|further down|lower down|efter|nedanför|näst)\b", re.I)
BEFORE = re.compile(r"\b(?:before|above|ahead of|further up|higher up|före|ovanför)\b", re.I)
STEPS = {"two": 2, "three": 3, "två": 2, "tre": 3}
STEP = re.compile(r"\b(two|three|två|tre|[23])\s+(?:places|rows|steps|positions|platser|rader|steg)\b", re.I)


def row_step(question: str) -> int:
    """How many rows along the table a follow-up asks ("who came right after them?": 1, "the one
    above": -1, "two places further down": 2); 0 when it asks no neighbouring row. A year before or
    after is not a row (``relative_years``)."""
    if says_relative_year(question):
        return 0
    sign = 1 if AFTER.search(question) else -1 if BEFORE.search(question) else 0
    m = STEP.search(question)
    n = (int(m.group(1)) if m.group(1).isdigit() else STEPS[m.group(1).lower()]) if m else 1
    return sign * n


@dataclass(frozen=True)
class Resolved:
    question: str
    """The question to answer: the follow-up made standalone where it only swaps a year or a name."""
    context: str = ""
    """The previous turn's subject, for a follow-up that asks something new about it."""
    years: tuple[int, ...] = ()
    """For a follow-up that names a year only relative to the last one asked ("and the year
    before?"): that year, and the last one asked (evidence often compares the two)."""
    stated: frozenset[str] = frozenset()
    """The figures the previous answer's lead stated (``text.figures_in``)."""
    step: int = 0
    """For a follow-up asking for a neighbouring row of the table just discussed, how many rows
    along from the row that states ``stated`` (``row_step``)."""


def _content(question: str) -> list[str]:
    return [w for w in words(question) if w not in STOPWORDS and w not in CONNECTIVES and w not in ANAPHORS
            and not w[0].isdigit()]


def _names(text: str, first: bool = False) -> list[str]:
    """Capitalised words (names, codes); a sentence's first word only with ``first`` and when it is
    not a common word ("Sudan?" is a name, "What" is not)."""
    common = STOPWORDS | CONNECTIVES | ANAPHORS
    out = []
    for m in NAME.finditer(text):
        before = text[: m.start()].rstrip()
        opening = not before or before[-1] in ".?!"
        word = m.group(0)
        if opening:
            if not first:
                continue
            parts = word.split()
            while parts and parts[0].lower() in common:  # "Och Schweiz": the name is Schweiz
                parts.pop(0)
            word = " ".join(parts)
        if word:
            out.append(word)
    return out


def is_follow_up(question: str) -> bool:
    """It leans on the previous turn: it opens like a follow-up, points back ("those", "it"), has one
    content word at most, or names a year only relative to another ("the figure a year earlier")."""
    ws = [w for w in words(question) if not w[0].isdigit()]
    return (bool(FOLLOW_UP_OPENING.search(question)) or any(w in ANAPHORS for w in ws) or len(_content(question)) <= 1
            or (says_relative_year(question) and not YEAR.search(question)))


def _swap(previous: str, question: str) -> str:
    """The previous question with the follow-up's years and names put in place of its own."""
    out = previous
    new_years = YEAR.findall(question)
    if new_years:
        old_years = YEAR.findall(out)
        if old_years:
            out = re.sub(rf"\b{old_years[-1]}\b", new_years[-1], out)
        else:
            out = f"{out.rstrip(' ?')} in {new_years[-1]}?"
    lowered = {w.lower() for w in words(previous)}
    new_names = [n for n in _names(question, first=True) if n.lower() not in lowered]
    if new_names:
        old = [n for n in _names(previous) if n.lower() not in {"iom"}]
        known = [n for n in old if re.sub(r"['’]s$", "", n.lower()) in known_names()]
        if known and new_names[0].lower() in known_names():
            old = known  # "And for Sweden?" replaces the country, not another capitalised word
        if old:
            out = re.sub(rf"\b{re.escape(old[-1])}\b", " ".join(new_names), out, count=1)
        else:
            out = f"{out.rstrip(' ?')} ({' '.join(new_names)})?"
    return out


def resolve(question: str, history: list[Turn] | None) -> Resolved:
    if not history or not is_follow_up(question):
        return Resolved(question)
    users = [t.content for t in history if t.role == "user"]
    if not users:
        return Resolved(question)
    previous = users[-1][:MAX_CONTEXT_CHARS]
    years: tuple[int, ...] = ()
    if says_relative_year(question) and not YEAR.search(question):
        asked = [int(y) for u in users for y in YEAR.findall(u[:MAX_CONTEXT_CHARS])][-1:]
        years = tuple(relative_years(question, asked) + asked)
    last = history[-1]
    answer_lead = lead_text(last.content)[:MAX_CONTEXT_CHARS] if last.role == "assistant" else ""
    stated = figures_in(answer_lead)
    step = row_step(question) if stated else 0
    rest = question
    for name in _names(question, first=True):
        rest = rest.replace(name, " ")
    if not _content(rest):
        return Resolved(_swap(previous, question), years=years, stated=stated, step=step)
    own_year = YEAR.search(question) or says_relative_year(question)
    context = YEAR.sub("", previous) if own_year else previous  # a follow-up's own year wins
    return Resolved(question, f"{context} {answer_lead}".strip(), years, stated, step)
