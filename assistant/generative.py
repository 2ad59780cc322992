"""The optional generative answerer: an LLM rewrites the extractive answer, under a grounding check.

It never answers on its own authority. It first runs the extractive answerer; a refusal is
returned unchanged, and otherwise the LLM sees only the extractive citations (their quotes and
the passages around them, numbered so that ``[n]`` is ``citations[n-1]``). Its text is kept only
if every number in it appears in a cited passage and its citation markers point to real
citations; anything else (ungrounded figure, unknown marker, a hedge, an empty or garbled
completion, any LLM error or timeout) returns the extractive answer. Citations and passages are
always the extractive ones, so every quote stays an exact span of its passage.

Backends (``settings.answerer``, registered in ``assistant.answerers``), both through llama-index's LLM interface:

- ``openai``: any OpenAI-compatible completion endpoint (``llm_base_url``, ``llm_model``,
  ``llm_api_key``) through ``OpenAILike``, e.g. ``python -m llama_cpp.server`` on loopback;
- ``llamacpp``: a local GGUF file (``llm_model_path``) loaded in process through ``LlamaCPP``.

The prompt templates live in ``settings.prompts_dir`` (``answer.txt``, ``context_item.txt``)
and are read at run time, so they can be tuned without touching code.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from llama_index.core.schema import NodeWithScore

from assistant.answering import ExtractiveAnswerer
from assistant.query import QueryPlan
from assistant.records import Answer, Citation
from assistant.settings import Settings
from assistant.text import numbers_in

log = logging.getLogger(__name__)

MAX_TOKENS = 120
TIMEOUT_S = 60.0
CONTEXT_BUDGET_CHARS = 2400
"""About 600 tokens of context: well inside a 2048-token window, and prompt evaluation is most of the latency."""
PASSAGE_WINDOW_CHARS = 400
STOP = ["\n"]
"""One line: the answer is one sentence, and a base model's next line is a new (made-up) source or question."""

MARKER = re.compile(r"\[(\d+)\]")
HEDGE = re.compile(
    r"\b(not (mentioned|provided|stated|specified|given|available|clear)|does not (say|state|contain|mention|specify)|"
    r"do not (say|state|contain|mention|specify)|cannot (be )?(determined|answer)|i don'?t know|unknown|no information)\b",
    re.I,
)


# -- grounding --------------------------------------------------------------------------------
def source_numbers(text: str) -> set[str]:
    """The numbers a source supports: as written (``3 508 772`` supports ``3,508,772``), and each
    space-separated digit group on its own, in case extraction glued a label or year to a figure."""
    found = set(numbers_in(text))
    found |= set(numbers_in(re.sub(r"(?<=\d)[ \u00a0\u202f\u2009]+(?=\d)", "\t", text)))
    return found


@dataclass(frozen=True)
class Grounding:
    ok: bool
    text: str
    reason: str = ""


def check_grounding(text: str, sources: dict[int, str], wants_number: bool = False, question: str = "") -> Grounding:
    """Accept ``text`` only if every number in it appears in a source it cites and its markers are real.

    ``sources`` maps citation ``n`` to the text the model was shown for it (passage, quote, title,
    section). A text with no marker gets the markers of the sources that hold its numbers (or
    ``[1]``, the best extractive claim, when it has no number); a marker to a citation that does
    not exist is a fabrication and rejects the text.
    """
    text = clean_completion(text)
    if not text:
        return Grounding(False, text, "empty completion")
    if re.search(r"[:,;]\s*(\[\d+\]\s*)*$", text):
        return Grounding(False, text, "the completion stops mid-answer")
    if HEDGE.search(text):
        return Grounding(False, text, "the completion hedges although the evidence answers")
    markers = [int(m) for m in MARKER.findall(text)]
    unknown = sorted({m for m in markers if m not in sources})
    if unknown:
        return Grounding(False, text, f"cites non-existent source(s) {unknown}")
    nums = numbers_in(text)
    if wants_number and not set(nums) - set(numbers_in(question)):
        return Grounding(False, text, "the question asks for a figure and the completion gives none beyond the question's")
    supported = {n: source_numbers(s) for n, s in sources.items()}
    # With markers, the figures must be in the sources the text cites; without, in any source shown.
    cited = set(markers) or set(supported)
    pool = set().union(*(supported[n] for n in cited)) if cited else set()
    missing = [x for x in nums if x not in pool]
    if missing:
        return Grounding(False, text, f"number(s) not in the cited passage(s) {sorted(cited)}: {missing}")
    if not markers:
        # Each figure cites the first source that holds it; a text without figures cites [1], the best claim.
        holders = sorted({next(n for n in sorted(supported) if x in supported[n]) for x in nums}) or [min(sources)]
        text = _attach_markers(text, holders)
    return Grounding(True, text)


def _attach_markers(text: str, ns: list[int]) -> str:
    marks = "".join(f"[{n}]" for n in ns)
    m = re.search(r"[.!?]$", text)
    return f"{text[:-1]} {marks}{text[-1]}" if m else f"{text} {marks}"


def clean_completion(text: str) -> str:
    """First paragraph of the completion, without an echoed prompt or a sentence cut off by max_tokens."""
    text = (text or "").replace("\r", "")
    for stop in ("\n\n", "\nQuestion:", "\nContext:", "Question:", "Context:"):
        text = text.split(stop, 1)[0]
    text = " ".join(text.split()).strip()
    if text and not re.search(r"[.!?)\]*”\"]$", text):
        ends = [m.end() for m in re.finditer(r"[.!?](?:\s*\[\d+\])*(?=\s|$)", text)]
        if ends:
            text = text[: ends[-1]]
    return text.strip()


# -- prompt -----------------------------------------------------------------------------------
def load_template(prompts_dir: Path, name: str) -> str:
    path = Path(prompts_dir) / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeError(f"prompt template {path} cannot be read: {exc}") from exc


def _window(passage: str, quote: str, size: int = PASSAGE_WINDOW_CHARS) -> str:
    """The passage around its quote, at most ``size`` characters, cut at word boundaries."""
    passage = passage.replace("\t", " | ")
    quote = quote.replace("\t", " | ")
    if len(passage) <= size:
        return passage
    at = passage.find(quote)
    if at < 0:
        return passage[:size].rsplit(" ", 1)[0] + " …"
    start = max(0, at - (size - len(quote)) // 2)
    end = min(len(passage), start + max(size, len(quote)))
    piece = passage[start:end]
    if start > 0:
        piece = "… " + piece.split(" ", 1)[-1]
    if end < len(passage):
        piece = piece.rsplit(" ", 1)[0] + " …"
    return piece


def _flat(text: str) -> str:
    return " ".join(text.replace("\t", " | ").split())


def build_context(citations: list[Citation], passages: dict[str, str], item_template: str) -> tuple[str, dict[int, str]]:
    """Numbered context (``[n]`` = citation n) and, per n, the text shown for it (what grounds numbers)."""
    items: list[str] = []
    shown: dict[int, str] = {}
    used = 0
    seen_passages: set[str] = set()
    for c in citations:
        passage = passages.get(c.passage_id, c.quote)
        source = " - ".join(x for x in (c.title, c.section) if x)
        if c.passage_id in seen_passages or used > CONTEXT_BUDGET_CHARS:
            excerpt = ""  # the passage is shown already, or the budget is spent: the quote alone
        else:
            excerpt = _flat(_window(passage, c.quote))
            seen_passages.add(c.passage_id)
        item = (item_template.replace("{n}", str(c.n)).replace("{source}", _flat(source))
                .replace("{quote}", _flat(c.quote)).replace("{passage}", excerpt)).rstrip()
        item = "\n".join(line for line in item.split("\n") if line.strip() not in ("", "Passage:"))
        items.append(item)
        used += len(item)
        shown[c.n] = "\n".join((passage, c.quote, c.title or "", c.section or ""))
    return "\n".join(items), shown


def build_prompt(template: str, question: str, context: str) -> str:
    return template.replace("{context}", context).replace("{question}", " ".join(question.split())).rstrip()


# -- LLM backends -----------------------------------------------------------------------------
def openai_llm(settings: Settings):
    """``answerer = openai``: any OpenAI-compatible completion endpoint through llama-index's ``OpenAILike``."""
    if not settings.llm_base_url:
        raise ValueError("answerer 'openai' needs ASSISTANT_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1)")
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as exc:
        raise RuntimeError(f"answerer 'openai' needs the optional llm extra (pip install '.[llm]'): {exc}") from exc
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    return OpenAILike(
        api_base=settings.llm_base_url,
        model=settings.llm_model or "local",
        api_key=key or "none",
        is_chat_model=False,
        is_function_calling_model=False,
        context_window=2048,
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        timeout=TIMEOUT_S,
        max_retries=0,
        additional_kwargs={"stop": STOP},
    )


def llamacpp_llm(settings: Settings):
    """``answerer = llamacpp``: a local GGUF file loaded in process through llama-index's ``LlamaCPP``."""
    path = settings.llm_model_path
    if not path or not Path(path).is_file():
        raise ValueError(f"answerer 'llamacpp' needs ASSISTANT_LLM_MODEL_PATH to name a .gguf file (got {path!r})")
    try:
        from llama_index.llms.llama_cpp import LlamaCPP
    except ImportError as exc:
        raise RuntimeError(f"answerer 'llamacpp' needs the optional llm extra (pip install '.[llm]'): {exc}") from exc
    return LlamaCPP(
        model_path=str(path),
        temperature=0.0,
        max_new_tokens=MAX_TOKENS,
        context_window=2048,
        generate_kwargs={"stop": STOP},
        model_kwargs={"n_threads": 2, "n_ctx": 2048},
        # A base model: the prompt goes in verbatim, never wrapped in a chat template.
        completion_to_prompt=lambda prompt: prompt,
        messages_to_prompt=lambda messages: "\n".join(str(m.content) for m in messages),
        verbose=False,
    )


class GenerativeAnswerer:
    """An ``answerers.Answerer``: the extractive answer, rephrased by ``llm`` when the text is grounded."""

    def __init__(self, settings: Settings, extractive: ExtractiveAnswerer, llm=None, serialise: bool = False):
        """``llm``: a llama-index LLM (``openai_llm`` or ``llamacpp_llm``; default: an OpenAI-compatible
        endpoint from the settings). ``serialise``: one call at a time (an in-process llama.cpp model
        is not thread-safe; a server handles its own queue)."""
        self.settings = settings
        self.extractive = extractive
        self.prompts_dir = Path(settings.prompts_dir)
        # Fail at load time, not on the first question, if the templates are missing.
        load_template(self.prompts_dir, "answer.txt")
        load_template(self.prompts_dir, "context_item.txt")
        self.llm = llm if llm is not None else openai_llm(settings)
        self._lock = threading.Lock() if serialise else None

    def prompt_for(self, question: str, plan: QueryPlan, base: Answer, retrieved: list[NodeWithScore]) -> tuple[str, dict[int, str]]:
        passages = {h.node.node_id: h.node.text for h in retrieved}
        item_template = load_template(self.prompts_dir, "context_item.txt")
        context, shown = build_context(base.citations, passages, item_template)
        prompt = build_prompt(load_template(self.prompts_dir, "answer.txt"), plan.question or question, context)
        return prompt, shown

    def complete(self, prompt: str) -> str:
        if self._lock is None:
            return self.llm.complete(prompt).text
        with self._lock:
            return self.llm.complete(prompt).text

    def answer(self, question: str, plan: QueryPlan, retrieved: list[NodeWithScore]) -> Answer:
        base = self.extractive.answer(question, plan, retrieved)
        if not base.answered or not base.citations:
            return base  # never let the LLM answer what the evidence does not support
        t0 = time.perf_counter()
        try:
            prompt, shown = self.prompt_for(question, plan, base, retrieved)
            raw = self.complete(prompt)
        except Exception as exc:  # noqa: BLE001 - any backend failure means the extractive answer
            log.warning("LLM answer failed (%s: %s); using the extractive answer", type(exc).__name__, exc)
            return self._with_llm_time(base, t0)
        grounding = check_grounding(raw, shown, plan.wants_number, plan.question or question)
        if not grounding.ok:
            log.warning("LLM answer rejected (%s): %r; using the extractive answer", grounding.reason, raw[:200])
            return self._with_llm_time(base, t0)
        log.info("LLM answer accepted: %r", grounding.text)
        answer = base.model_copy(update={"answer": grounding.text})
        return self._with_llm_time(answer, t0)

    @staticmethod
    def _with_llm_time(answer: Answer, t0: float) -> Answer:
        timings = {**answer.timings_ms, "llm": round((time.perf_counter() - t0) * 1000, 2)}
        return answer.model_copy(update={"timings_ms": timings})
