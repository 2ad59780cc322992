"""Query latency benchmark over the dev set: p50/p95 of retrieval and of the whole answer, and peak RSS.

Uses the index in index/ (build it with `assistant index`). Each question is asked once as new
(its query embedded), then --rounds more times (the query embedding cached). Targets on a 2-core machine: retrieval p50 < 50 ms, answer p50 < 150 ms.
Run: .venv/bin/python bench/query.py [--set evals/dev.jsonl] [--rounds 3]
"""

from __future__ import annotations

import argparse
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
