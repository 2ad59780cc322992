"""Passage stores by name: ``settings.store`` picks one (``local`` by default).

A store is one file in this package implementing ``assistant.store.PassageStore`` and one
``register_store`` line below. Factories take the settings and are called lazily, so a store's
heavy imports (faiss, a database driver) happen only when it is chosen.

``build_stats`` computes the corpus statistics (``StoreStats``) a store saves with a build, so
every store derives idf and vocabulary the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from assistant.store import Build, IndexUnavailable, PassageStore, StoreStats

if TYPE_CHECKING:
    from assistant.settings import Settings

StoreFactory = Callable[["Settings"], PassageStore]

_STORES: dict[str, StoreFactory] = {}


def register_store(name: str, factory: StoreFactory) -> None:
    """Make ``factory(settings) -> PassageStore`` available as ``settings.store == name``."""
    _STORES[name.strip().lower()] = factory


def store_names() -> tuple[str, ...]:
    return tuple(_STORES)


def open_store(settings: Settings) -> PassageStore:
    """The store ``settings.store`` names; ValueError for a name no one registered."""
    key = (settings.store or "").strip().lower()
    if key not in _STORES:
        raise ValueError(f"unknown store {settings.store!r}; choose one of: {', '.join(_STORES)}")
    return _STORES[key](settings)


def build_stats(build: Build) -> StoreStats:
    """The statistics a store saves with ``build``: idf of the BM25 tokens, the passages' words, counts."""
    from assistant.evidence import IdfTable
    from assistant.lexical import words

    idf = IdfTable(build.lexical_tokens)
    vocabulary = frozenset(w for n in build.nodes for w in words(n.text) if not w[0].isdigit())
    per_doc = Counter(n.metadata["document_id"] for n in build.nodes)
    return StoreStats(passages=len(build.nodes), idf=idf.idf, idf_default=idf.default, vocabulary=vocabulary,
                      passages_per_document=dict(per_doc))


def _local(settings: Settings) -> PassageStore:
    from assistant.stores.local import LocalStore

    return LocalStore(settings.index_dir)


register_store("local", _local)


def _postgres(settings: Settings) -> PassageStore:
    from assistant.stores.postgres import PostgresStore

    return PostgresStore.from_settings(settings)


register_store("postgres", _postgres)


__all__ = ["IndexUnavailable", "StoreFactory", "build_stats", "open_store", "register_store", "store_names"]
