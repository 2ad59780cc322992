"""Offline question answering with exact citations over the IOM partnership documents."""

from assistant import offline as _offline

_offline.enable()

__version__ = "0.1.0"
