"""Retrieval quality by signal: BM25 alone, each embedding model alone, and their fusion.

hit@k: an evidence string (whitespace-collapsed, lower-cased) lies inside one of the top-k passages,
as in ../shared/tools/score_api.py. Builds a throwaway index per embedding model (embeddings cached).
Run: .venv/bin/python bench/retrieval.py [--set evals/dev.jsonl] [--models e5-small minilm]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from assistant.compose import make_embedder, make_store
from assistant.indexing import build_index
from assistant.retrieval import FusionWeights, HybridRetriever
from assistant.settings import ROOT, Settings


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


def hits(cases, rank_fn) -> dict[int, float]:
    """``rank_fn(question)`` -> passage texts, best first."""
    found = {1: 0, 5: 0, 10: 0}
    for case in cases:
        evidence = [norm(e) for e in case["evidence"]]
        order = rank_fn(case["question"])[:10]
        rank = next((i for i, text in enumerate(order) if any(e in norm(text) for e in evidence)), None)
        for k in found:
            found[k] += rank is not None and rank < k
    return {k: round(100 * v / len(cases), 1) for k, v in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", nargs="+", default=[str(ROOT / "evals" / "dev.jsonl")])
    parser.add_argument("--models", nargs="+", default=["e5-small", "minilm"])
    args = parser.parse_args()
    cases = [json.loads(line) for path in args.set for line in Path(path).read_text().splitlines() if line.strip()]
    cases = [c for c in cases if c.get("evidence")]
    print(f"{len(cases)} answerable questions from {', '.join(Path(p).name for p in args.set)}")
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(index_dir=Path(tmp) / "index", data_dir=Path(tmp) / "var", embedding_model=model,
                                _env_file=None)
            build_index(settings)
            store = make_store(settings)
            embedder = make_embedder(settings)
            retriever = HybridRetriever(store, embedder)
            plain = HybridRetriever(store, embedder, weights=FusionWeights(named_document=0, year_in_text=0,
                                                                          year_in_period=0, excluded_year=0))

            def ranked(question: str, signal) -> list[str]:
                cands = plain.candidates(plain.plan(question))
                return [cands.nodes[i].text for i in np.argsort(-signal(cands, plain.plan(question)))]

            rows = {
                "bm25": lambda q: ranked(q, lambda c, p: c.bm25),
                f"dense {model}": lambda q: ranked(q, lambda c, p: c.dense),
                f"fusion bm25+{model}": lambda q: ranked(q, lambda c, p: plain.fuse(p, c)),
                f"fusion+query steering ({model})": lambda q: [h.node.text
                                                              for h in retriever.search(retriever.plan(q), 10)],
            }
            for name, fn in rows.items():
                if name == "bm25" and model != args.models[0]:
                    continue
                h = hits(cases, fn)
                print(f"{name:36s} hit@1={h[1]:5.1f}  hit@5={h[5]:5.1f}  hit@10={h[10]:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
