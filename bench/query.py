"""Query latency benchmark over the dev set: p50/p95 of retrieval and of the whole answer, and peak RSS.

Uses the index in index/ (build it with `assistant index`). Each question is asked once as new
(its query embedded), then --rounds more times (the query embedding cached). Targets on a 2-core machine: retrieval p50 < 50 ms, answer p50 < 150 ms.
Run: .venv/bin/python bench/query.py [--set evals/dev.jsonl] [--rounds 3] [--llm]

``--llm`` adds the LLM path's row (the ``openai``/``llamacpp`` answerers' lead writer, ``make setup-llm``):
for the first ``--llm-questions`` questions whose extractive lead states a figure (the others never reach the LLM), the extractive answer, then the lead streamed from
the Qwen GGUF behind a real ``llama_cpp.server`` on loopback (started here unless ``ASSISTANT_LLM_BASE_URL``
names one): time to the first token, the LLM's total, the whole answer's total (p50/p95), and how many
leads passed the grounding check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from assistant.compose import build_service
from assistant.settings import ROOT, get_settings


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", default=str(ROOT / "evals" / "dev.jsonl"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--llm", action="store_true", help="also the LLM lead writer's row (first token, total)")
    parser.add_argument("--llm-questions", type=int, default=10)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in Path(args.set).read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    service = build_service(get_settings())
    service.load()
    print(f"load seconds={time.perf_counter() - t0:.1f}")
    report: dict[str, tuple[list[float], list[float]]] = {}
    for label, rounds in (("new questions", 1), ("repeated questions", args.rounds)):
        retrieval, total = [], []
        for _ in range(rounds):  # the first pass embeds every query; repeats hit the query cache
            for q in questions:
                answer = service.ask(q)
                retrieval.append(answer.timings_ms["plan"] + answer.timings_ms["retrieval"])
                total.append(answer.timings_ms["total"])
        report[label] = (retrieval, total)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"questions={len(questions)} rounds={args.rounds}")
    for label, (retrieval, total) in report.items():
        print(f"{label:19s} retrieval_ms p50={statistics.median(retrieval):.1f} p95={pct(retrieval, 0.95):.1f}  "
              f"answer_ms p50={statistics.median(total):.1f} p95={pct(total, 0.95):.1f}")
    print(f"peak_rss_mb={rss_mb:.0f}")
    if args.llm:
        llm_row(service, questions, args.llm_questions)
    return 0


def llm_row(service, questions: list[str], limit: int) -> None:
    from assistant import llm_model
    from assistant.generative import GenerativeAnswerer, check_lead, extractive_lead, lead_figures, openai_llm

    state = service.parts()
    extractive = getattr(state.answerer, "extractive", state.answerer)
    first, llm_total, total, kept, asked = [], [], [], 0, 0
    with contextlib.ExitStack() as stack:
        settings = service.settings
        base_url = settings.llm_base_url or stack.enter_context(llm_model.serve())
        settings = settings.model_copy(update={"answerer": "openai", "llm_base_url": base_url,
                                               "llm_model": settings.llm_model or "qwen"})
        writer = GenerativeAnswerer(settings, extractive, openai_llm(settings), documents=state.store.documents())
        writer.complete("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")  # warm the server
        for q in questions:
            if asked >= limit:
                break
            t0 = time.perf_counter()
            plan = state.retriever.plan(q)
            hits = state.retriever.gather(plan, 5, None)
            base = extractive.answer(q, plan, hits)
            if not base.answered or not lead_figures(extractive_lead(base.answer)):
                continue  # a refusal, or a lead with no verified figure, never reaches the LLM
            asked += 1
            prompt, shown = writer.prompt_for(q, plan, base, hits)
            t1 = time.perf_counter()
            text, t_first = "", None
            for chunk in writer.llm.stream_complete(prompt):
                if t_first is None and chunk.delta:
                    t_first = time.perf_counter()
                text = chunk.text
            t2 = time.perf_counter()
            verdict = check_lead(text, shown, extractive_lead(base.answer), writer.names_pool(base, shown),
                                 plan.wants_number, plan.question or q, plan.swedish)
            kept += verdict.ok
            first.append(((t_first or t2) - t1) * 1000)
            llm_total.append((t2 - t1) * 1000)
            total.append((t2 - t0) * 1000)
    if not first:
        print("llm lead: no answered question to time")
        return
    print(f"llm lead ({asked} asked)  first_token_ms p50={statistics.median(first):.0f} p95={pct(first, 0.95):.0f}  "
          f"llm_ms p50={statistics.median(llm_total):.0f} p95={pct(llm_total, 0.95):.0f}  "
          f"answer_ms p50={statistics.median(total):.0f} p95={pct(total, 0.95):.0f}  grounded={kept}/{asked}")


if __name__ == "__main__":
    sys.exit(main())
