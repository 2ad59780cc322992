"""Load benchmark for the HTTP API (not a test).

Starts ``assistant serve`` on a free loopback port (``--workers N`` processes), then drives
``POST /v1/ask`` with N concurrent clients asking dev-set questions until a request count
or a time limit is reached. Prints requests/s, p50/p95/p99 latency and the error count.

    python bench/load.py                       # 32 clients, 400 requests or 60 s
    python bench/load.py --clients 8 --requests 100 --duration 30
    python bench/load.py --url http://127.0.0.1:8000 --key KEY   # an already running server
    python bench/load.py --vary                # every question text unique: the cold path
    python bench/load.py --workers 2           # one server process per core
    python bench/load.py --vary --heavy 2      # plus 2 clients sending maximal allowed bodies

The server inherits the environment (ASSISTANT_INDEX_DIR etc.); the rate limit is switched
off for the run (ASSISTANT_RATE_LIMIT_PER_MINUTE=0) since every client shares one address.
Target on the 2-core machine: 0 errors at 32 clients, p95 under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = ROOT / "evals" / "dev.jsonl"

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    """`assistant serve` on loopback, without rate limit or access log (they would measure themselves)."""
    env = {**os.environ, "ASSISTANT_RATE_LIMIT_PER_MINUTE": "0", "ASSISTANT_LOG_LEVEL": "WARNING",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           # the code of this checkout, not whichever one the editable install points at
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    exe = shutil.which("assistant", path=str(Path(sys.executable).parent)) or shutil.which("assistant")
    cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    print(f"starting server: assistant serve --workers {workers} on 127.0.0.1:{port}", file=sys.stderr)
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


def wait_ready(base: str, proc: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode} before it was ready (is the index built?)")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


def load_questions(path: Path) -> list[str]:
    questions = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not questions:
        raise SystemExit(f"no questions in {path}")
    return questions


def heavy_body(questions: list[str], i: int, max_question: int = 2000, max_turn: int = 4000,
               max_history: int = 16000) -> dict:
    """The largest request the server accepts by default: a question at the length limit and a
    history at the per-turn and total limits (distinct each time, so nothing is cached)."""
    text = " ".join(questions)
    def chunk(n: int, salt: int) -> str:
        start = (salt * 7919) % max(1, len(text) - n)
        return (text[start:] + " " + text)[:n]
    turns = max_history // max_turn
    history = [{"role": "user" if t % 2 == 0 else "assistant", "content": chunk(max_turn, i * 10 + t)}
               for t in range(turns)]
    return {"question": chunk(max_question - 20, i) + f" (heavy {i})?", "history": history}


async def drive(
    base: str, key: str | None, questions: list[str], clients: int, requests: int, duration: float, vary: bool,
    heavy: int = 0,
):
    latencies: list[float] = []
    errors: dict[str, int] = {}
    heavy_stats = {"ok": 0, "errors": 0, "latencies": []}
    issued = 0
    stop_at = time.monotonic() + duration
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=clients + heavy, max_keepalive_connections=clients + heavy)
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as http:

        async def heavy_worker(w: int) -> None:
            i = 0
            while not done.is_set() and time.monotonic() < stop_at:
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/ask", json=heavy_body(questions, w * 100_000 + i))
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                heavy_stats["ok" if ok else "errors"] += 1
                heavy_stats["latencies"].append(time.perf_counter() - t0)

        async def worker() -> None:
            nonlocal issued
            while issued < requests and time.monotonic() < stop_at:
                question = questions[issued % len(questions)]
                if vary:  # a distinct text each time, so no cache on the server side can answer it
                    question = f"{question} (request {issued})"
                issued += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/ask", json={"question": question})
                    ok = r.status_code == 200 and "answered" in r.json()
                    kind = str(r.status_code)
                except (httpx.HTTPError, ValueError) as exc:
                    ok, kind = False, type(exc).__name__
                elapsed = time.perf_counter() - t0
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[kind] = errors.get(kind, 0) + 1

        t0 = time.perf_counter()
        heavies = [asyncio.create_task(heavy_worker(w)) for w in range(heavy)]
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
        done.set()
        await asyncio.gather(*heavies)
    return latencies, errors, wall, heavy_stats


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--requests", type=int, default=400, help="stop after this many requests (default 400)")
    ap.add_argument("--duration", type=float, default=60.0, help="or after this many seconds (default 60)")
    ap.add_argument("--warmup", type=int, default=4, help="sequential warm-up requests, not counted")
    ap.add_argument("--url", help="use an already running server instead of starting one")
    ap.add_argument("--key", default=os.environ.get("ASSISTANT_BENCH_KEY"), help="API key (Bearer), if keys are set")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    ap.add_argument("--questions", type=Path, default=DEV_SET)
    ap.add_argument("--vary", action="store_true",
                    help="make every question text unique (measures the cold path, no query-embedding cache hits)")
    ap.add_argument("--heavy", type=int, default=0,
                    help="extra clients that keep sending the largest request allowed (not counted in the figures)")
    ap.add_argument("--ready-timeout", type=float, default=300.0)
    args = ap.parse_args()

    questions = load_questions(args.questions)
    proc = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(port, args.workers)
    batches: dict[str, str] = {}
    try:
        wait_ready(base, proc, args.ready_timeout)
        headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
        for q in questions[: args.warmup]:
            httpx.post(base + "/v1/ask", json={"question": q}, headers=headers, timeout=60)
        latencies, errors, wall, heavy = asyncio.run(
            drive(base, args.key, questions, args.clients, args.requests, args.duration, args.vary, args.heavy)
        )
        metrics = httpx.get(base + "/metrics", headers=headers, timeout=10).text
        batches = dict(re.findall(r'assistant_query_embedding_batches_total\{size="(\d+)"\} (\d+)', metrics))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    done = len(latencies)
    n_err = sum(errors.values())
    ms = [x * 1000 for x in latencies]
    print(f"clients          {args.clients}" + ("  (unique question texts)" if args.vary else ""))
    print(f"requests         {done + n_err} in {wall:.1f} s ({done} ok, {n_err} errors)")
    print(f"throughput       {done / wall:.1f} requests/s")
    if ms:
        print(f"latency p50      {pct(ms, 50):.0f} ms")
        print(f"latency p95      {pct(ms, 95):.0f} ms")
        print(f"latency p99      {pct(ms, 99):.0f} ms")
        print(f"latency mean     {statistics.fmean(ms):.0f} ms (max {max(ms):.0f} ms)")
    print(f"errors           {n_err}" + (f"  {errors}" if errors else ""))
    if batches:  # one server process's micro-batcher (with --workers N, the one that answered /metrics)
        calls = sum(int(c) for c in batches.values())
        queries = sum(int(n) * int(c) for n, c in batches.items())
        print(f"query batches    {calls} model calls for {queries} queries (mean {queries / calls:.1f}); "
              + ", ".join(f"{n}x{c}" for n, c in sorted(batches.items(), key=lambda t: int(t[0]))))
    if args.heavy:
        hl = [x * 1000 for x in heavy["latencies"]]
        print(f"heavy clients    {args.heavy}: {heavy['ok']} ok, {heavy['errors']} not ok"
              + (f", p50 {pct(hl, 50):.0f} ms, max {max(hl):.0f} ms" if hl else ""))
    return 1 if n_err else 0


if __name__ == "__main__":
    sys.exit(main())
