"""Is the published build the one this code and corpus would build? Can this code serve it?"""

from __future__ import annotations

import hashlib

from assistant.catalog import load_catalog
from assistant.chunking import CHUNKER_VERSION
from assistant.lexical import analysis_version
from assistant.loaders import SUPPORTED_SUFFIXES
from assistant.records import DocumentInfo
from assistant.settings import Settings
from assistant.store import IndexUnavailable, PassageStore


def corpus_fingerprint(settings: Settings, docs: list[DocumentInfo]) -> dict[str, str]:
    """Content hash of every catalogued file (and its catalog entry, with its family's running
    headers), by document id."""
    out = {}
    for doc in docs:
        path = settings.corpus_dir / doc.file
        content = path.read_bytes() if path.is_file() else b""
        out[doc.id] = hashlib.sha256(content + doc.model_dump_json().encode()).hexdigest()
    return out


def check_compatible(manifest: dict, settings: Settings) -> None:
    """Refuse a build made with another embedding model or chunker (IndexUnavailable: re-index)."""
    if manifest.get("embedding_name") != settings.embedding_model:
        raise IndexUnavailable(
            f"the index was built with embedding model {manifest.get('embedding_name')!r}, "
            f"but {settings.embedding_model!r} is configured: re-index with `assistant index`"
        )
    if manifest.get("chunker_version") != CHUNKER_VERSION:
        raise IndexUnavailable(
            f"the index was built by chunker version {manifest.get('chunker_version')}, this is version "
            f"{CHUNKER_VERSION}: re-index with `assistant index`"
        )


def is_stale(settings: Settings, store: PassageStore | None = None) -> bool:
    """True when there is no build this code can read, or the corpus, model, chunking or lexical
    analysis (the glossary that glosses Swedish passages) changed."""
    from assistant import compose

    try:
        manifest = (store or compose.make_store(settings)).manifest()
        check_compatible(manifest, settings)
    except IndexUnavailable:
        return True
    docs = load_catalog(settings.corpus_dir, SUPPORTED_SUFFIXES)
    return (
        manifest.get("chunk_tokens") != settings.chunk_tokens
        or manifest.get("lexical_analysis") != analysis_version()
        or manifest.get("documents") != corpus_fingerprint(settings, docs)
    )
