"""Importing ``assistant`` makes tokenizers and models load from site-packages, never the network.

Each check runs in a fresh interpreter whose proxies all point at a dead local port
(127.0.0.1:9), so any download attempt fails instead of quietly succeeding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from assistant.settings import ROOT

DEAD = "http://127.0.0.1:9"


def run_isolated(code: str, tmp_path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()}
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR",
                "NO_PROXY", "no_proxy"):
        env.pop(var, None)
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        env[var] = DEAD
    env["HOME"] = str(tmp_path)  # no user-level caches to fall back on
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["HF_HOME"] = str(tmp_path / "hf")
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_sets_offline_env_and_tiktoken_works(tmp_path):
    result = run_isolated(
        """
        import json, os
        import assistant
        import tiktoken
        enc = tiktoken.get_encoding("cl100k_base")
        tokens = enc.encode("Softly earmarked core support to IOM, 2019: 100 miljoner SEK.")
        print(json.dumps({
            "tokens": len(tokens),
            "roundtrip": enc.decode(tokens),
            "o200k": len(tiktoken.get_encoding("o200k_base").encode("hello world")),
            "env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TIKTOKEN_CACHE_DIR")},
        }))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["tokens"] > 5
    assert out["roundtrip"] == "Softly earmarked core support to IOM, 2019: 100 miljoner SEK."
    assert out["o200k"] == 2
    assert out["env"]["HF_HUB_OFFLINE"] == "1"
    assert out["env"]["TRANSFORMERS_OFFLINE"] == "1"
    cache = out["env"]["TIKTOKEN_CACHE_DIR"]
    assert cache.replace("\\", "/").endswith("llama_index/core/_static/tiktoken_cache")
    assert os.path.isdir(cache)


def test_dead_proxy_really_blocks_downloads(tmp_path):
    """Without the shipped cache tiktoken must try to download, and the dead proxy must stop it:
    otherwise the test above would prove nothing."""
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    result = run_isolated(
        """
        import tiktoken
        try:
            tiktoken.get_encoding("cl100k_base")
        except Exception as exc:
            print("FAILED", type(exc).__name__)
        else:
            print("DOWNLOADED")
        """,
        tmp_path,
        TIKTOKEN_CACHE_DIR=str(empty),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FAILED" in result.stdout, result.stdout


def test_e5_embedding_loads_offline_in_fresh_process(tmp_path):
    result = run_isolated(
        """
        import os
        import numpy as np
        from assistant.embeddings import get_embedding
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        v = np.asarray(get_embedding("e5-small").get_query_embedding("öronmärkt kärnstöd"))
        print(v.shape[0], round(float(np.linalg.norm(v)), 4))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["384", "1.0"]
