"""Errors a passage store raises that the service and the API turn into answers."""

from __future__ import annotations

from assistant.store import IndexUnavailable


class StoreUnavailable(RuntimeError):
    """The store's backing service (the database) cannot be reached: the API answers 503 and the
    worker keeps trying; nothing is lost, the next request reconnects."""


class NoBuild(IndexUnavailable):
    """The database holds no published build yet (run ``assistant index``)."""
