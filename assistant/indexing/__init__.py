"""Building the index: the pipeline (catalog -> passages -> vectors -> ``Build``), staleness, the CLI display.

Where a build lives and how it is published is the store's business (``assistant.stores``).
"""

from __future__ import annotations

from assistant.indexing.pipeline import BuildReport, build_index, embed_text, lexical_tokens, make_build
from assistant.indexing.progress import build_index_cli
from assistant.indexing.staleness import check_compatible, corpus_fingerprint, is_stale
from assistant.store import IndexUnavailable

__all__ = [
    "BuildReport", "IndexUnavailable", "build_index", "build_index_cli", "check_compatible", "corpus_fingerprint",
    "embed_text", "is_stale", "lexical_tokens", "make_build",
]
