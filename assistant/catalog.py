"""The corpus catalog (``corpus/catalog.toml``): which files are documents and what they are.

The only module that parses the catalog; everything else reads ``DocumentInfo`` records from here.
A ``[families.<name>]`` table holds what a family of documents shares (``running_headers``: the
lines its pages repeat); a document names its family with ``family = "<name>"``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assistant.records import DocumentInfo
from assistant.text import YEAR_IN_NAME

CATALOG_FILE = "catalog.toml"


class CatalogError(Exception):
    pass


def _inferred(path: Path) -> DocumentInfo:
    """Defaults for a file dropped into corpus/ without a catalog entry."""
    years = YEAR_IN_NAME.findall(path.stem)
    return DocumentInfo(
        id=re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-"),
        file=path.name,
        title=path.stem.replace("_", " ").replace("-", " ").strip(),
        year=int(years[0]) if years else None,
        period="-".join(years[:2]) if years else None,
    )


class Family(BaseModel):
    """What the documents of one family share."""

    model_config = ConfigDict(extra="forbid")

    running_headers: list[str] = Field(default_factory=list)
    """Regexes, each matched against a whole line (stripped, any case), of what the family prints at
    the top or foot of its pages, e.g. the IOM Council document code ``C/112/INF/1``."""


def read_catalog(catalog_path: Path) -> list[DocumentInfo]:
    """The entries of one catalog file, with their family's running headers (FileNotFoundError if
    there is no file)."""
    text = Path(catalog_path).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
        families = {name: Family(**table) for name, table in data.get("families", {}).items()}
        docs = [DocumentInfo(**entry) for entry in data.get("documents", [])]
    except (tomllib.TOMLDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogError(f"{catalog_path}: {exc}") from exc
    for doc in docs:
        if doc.family is not None:
            if doc.family not in families:
                raise CatalogError(f"{catalog_path}: document {doc.id!r}: no [families.{doc.family}] table")
            doc.running_headers = list(dict.fromkeys([*families[doc.family].running_headers, *doc.running_headers]))
        for pattern in doc.running_headers:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CatalogError(f"{catalog_path}: document {doc.id!r}: running header {pattern!r}: {exc}") from exc
    return docs


def load_catalog(corpus_dir: Path, suffixes: frozenset[str] | set[str] | None = None) -> list[DocumentInfo]:
    """Catalog entries, plus inferred entries for uncatalogued files with a supported suffix."""
    catalog_path = corpus_dir / CATALOG_FILE
    docs: list[DocumentInfo] = read_catalog(catalog_path) if catalog_path.exists() else []
    root = corpus_dir.resolve()
    for d in docs:
        # A catalog entry names a file inside corpus/: no absolute paths, no "..", no symlink out of it.
        candidate = Path(d.file)
        resolved = (corpus_dir / candidate).resolve()
        if candidate.is_absolute() or ".." in candidate.parts or not resolved.is_relative_to(root) or resolved == root:
            raise CatalogError(f"{catalog_path}: document {d.id!r}: file {d.file!r} is not a file inside {corpus_dir}")
    ids = [d.id for d in docs]
    if len(ids) != len(set(ids)):
        raise CatalogError(f"{catalog_path}: duplicate document ids")
    known = {d.file for d in docs}
    if suffixes:
        for path in sorted(corpus_dir.iterdir()):
            if path.is_file() and path.name not in known and path.suffix.lower() in suffixes and path.name != CATALOG_FILE:
                docs.append(_inferred(path))
    return docs
