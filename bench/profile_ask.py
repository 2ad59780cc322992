"""CPU profile of the ask path in one process (not a test).

Loads the service on the built index, answers N questions from ``evals/golden.jsonl`` (with their
history) once to warm the per-text caches, then again, each text made unique, one after another under
cProfile, timed in process CPU seconds (so other
processes on the machine do not inflate the figures). The query micro-batcher is switched off so
the model call runs in the profiled thread. Prints CPU per question and the functions with the
most cumulative and own CPU time.

    python bench/profile_ask.py                 # 200 questions
    python bench/profile_ask.py --n 100 --out var/ask.prof
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--questions", type=Path, default=ROOT / "evals" / "golden.jsonl")
    ap.add_argument("--out", type=Path, default=None, help="write the raw profile (pstats) here")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True,
                    help="answer every question once, unprofiled, before the profiled pass (default on)")
    args = ap.parse_args()

    from assistant.records import Turn
    from assistant.service import AssistantService
    from assistant.settings import Settings

    cases = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    cases = cases[: args.n]
    service = AssistantService(Settings())
    service.load()
    service._state.retriever.embedder.batcher = None  # the model call in this thread, not the batcher's
    service.ask("What did Denmark give IOM unearmarked in 2022?")  # warm
    if args.warm:  # a long-running server has seen its passages before: fill the per-text caches first
        for case in cases:
            service.ask(case["question"], history=[Turn(**t) for t in case.get("history") or []] or None)

    profiler = cProfile.Profile(time.process_time)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    profiler.enable()
    for i, case in enumerate(cases):
        history = [Turn(**t) for t in case.get("history") or []]
        # a distinct text each time (as bench/load.py --vary): no query-embedding cache hit
        service.ask(f"{case['question']} (request {i})", history=history or None)
    profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"{len(cases)} questions: {cpu / len(cases) * 1000:.1f} ms CPU and {wall / len(cases) * 1000:.1f} ms wall "
          f"per question")
    stats = pstats.Stats(profiler)
    if args.out:
        stats.dump_stats(str(args.out))
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
