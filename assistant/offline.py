"""Make every model and tokenizer load from site-packages, never from the network.

Imported first by the package so that nothing (tiktoken, huggingface_hub) probes a hub.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def tiktoken_cache_dir() -> Path:
    """The tiktoken cache that llama-index-core ships (cl100k_base, o200k_base)."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-index-core is not installed; it carries the offline tiktoken cache")
    return Path(list(spec.submodule_search_locations)[0]) / "_static" / "tiktoken_cache"


def enable() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache_dir())
