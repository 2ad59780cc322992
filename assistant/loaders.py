"""Turn a document file into plain text the chunker can split.

One entry point, :func:`load_text`, dispatching on the file's suffix:

- ``.txt`` / ``.md``: strict UTF-8 (a BOM is dropped, line endings become ``\\n``).
- ``.pdf`` (pypdf): each page's text is followed by a marker line
  ``-----------------------Page {n} End-----------------------`` (the same convention as the seed
  text files), so the chunker derives real page numbers from it. Pages without text still get
  their marker, so numbering stays true. pypdf's plain text puts each table cell on its own line;
  :func:`align_table_rows` puts a table's cells back on one tab-separated line per row (the format
  of the seed texts' tables), using pypdf's layout mode to see which cells share a row.
- ``.docx`` (python-docx): paragraphs and headings each on their own line, tables as
  tab-separated rows, in document order.
- ``.html`` / ``.htm`` (beautifulsoup4, ``html.parser``): ``script``/``style``/``nav`` dropped;
  headings, paragraphs, list items and table rows (tab-separated cells) kept as lines.

Every failure (missing, empty, binary, non-UTF-8, corrupt, unknown type) raises :class:`LoadError`,
whose ``str()`` is one line: ``"<file name>: <reason>"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

__all__ = ["LoadError", "load_text", "SUPPORTED_SUFFIXES", "page_marker"]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".pdf", ".docx", ".html", ".htm"})


def page_marker(n: int) -> str:
    """The line that closes page ``n`` (1-based), as in the seed text files."""
    return f"-----------------------Page {n} End-----------------------"


class LoadError(Exception):
    """A document could not be turned into text. ``str(err)`` is ``"<name>: <reason>"``."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path.name}: {self.reason}")

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"

    def __reduce__(self):  # picklable across process pools
        return (type(self), (self.path, self.reason))


def load_text(path: Path | str) -> str:
    """Return the text of ``path``; raise :class:`LoadError` with a clear reason otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(none)"
        raise LoadError(
            path, f"unsupported file type {shown} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
        )
    data = _read_bytes(path)
    if not data:
        raise LoadError(path, "empty file")
    loader = _LOADERS[suffix]
    try:
        text = loader(path, data)
    except LoadError:
        raise
    except Exception as exc:  # any parser failure is a bad document, never a crash
        kind = {".pdf": "PDF", ".docx": ".docx"}.get(suffix, suffix)
        raise LoadError(path, f"corrupt or unreadable {kind} ({type(exc).__name__}: {exc})") from exc
    if loader is not _load_plain:  # plain text is kept byte-exact: passages cite offsets into it
        text = _tidy(text)
    if not _strip_markers(text).strip():
        raise LoadError(path, "no text in file" if suffix != ".pdf" else "PDF has no extractable text (scanned images?)")
    return text


# ---------------------------------------------------------------------------------------------- io


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoadError(path, "file not found") from None
    except IsADirectoryError:
        raise LoadError(path, "is a directory, not a file") from None
    except PermissionError:
        raise LoadError(path, "permission denied") from None
    except OSError as exc:
        raise LoadError(path, f"cannot read file ({exc.strerror or exc})") from None


_MARKER_RE = re.compile(r"^-{5,}Page \d+ End-{5,}$", re.MULTILINE)


def _strip_markers(text: str) -> str:
    return _MARKER_RE.sub("", text)


def _tidy(text: str) -> str:
    """Normalise line endings, drop trailing spaces and NULs, cap runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n") + "\n"


# --------------------------------------------------------------------------------------- plain text


def _load_plain(path: Path, data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise LoadError(path, "UTF-16 text, not UTF-8; save it as UTF-8")
    if b"\x00" in data:
        raise LoadError(path, "binary file (contains NUL bytes), not UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise LoadError(path, f"not valid UTF-8 (byte 0x{bad} at offset {exc.start}); save it as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoadError(path, "file contains only whitespace")
    return text


# ---------------------------------------------------------------------------------------------- pdf


def _load_pdf(path: Path, data: bytes) -> str:
    if b"%PDF-" not in data[:1024]:
        raise LoadError(path, "not a PDF (no %PDF- header)")
    import logging

    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # its repair warnings would clutter the one-line errors
    try:
        return _read_pdf(path, data)
    finally:
        pypdf_log.setLevel(level)


def _read_pdf(path: Path, data: bytes) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:
                ok = 0
            if not ok:
                raise LoadError(path, "PDF is password-protected")
        pages = list(reader.pages)
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise LoadError(path, f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not pages:
        raise LoadError(path, "PDF has no pages")
    parts: list[str] = []
    for n, page in enumerate(pages, start=1):
        try:
            page_text = page.extract_text() or ""
        except Exception as exc:
            raise LoadError(path, f"corrupt PDF: page {n} cannot be read ({type(exc).__name__}: {exc})") from None
        if page_text.count("\n") >= 3:  # a table needs rows
            try:
                layout = page.extract_text(extraction_mode="layout") or ""
            except Exception:  # the layout is only a hint: keep the plain text
                layout = ""
            page_text = align_table_rows(page_text, layout)
        page_text = page_text.replace("\x00", "").strip("\n")
        parts.append(f"{page_text}\n{page_marker(n)}\n" if page_text.strip() else f"{page_marker(n)}\n")
    return "\n".join(parts)


# Cells of a layout-mode line: runs of words with single spaces; two or more spaces end a cell.
_LAYOUT_CELL = re.compile(r"\S+(?: \S+)*")
MAX_WORDS_PER_CELL = 4
"""A block whose cells have more words than this (median) is text set in columns, not a table."""


def _layout_rows(layout: str) -> list[list[tuple[int, int, str]]]:
    """Candidate table blocks of a layout-mode page: runs of lines with two or more cells whose
    columns line up (a cell starts or ends where a cell of another row does)."""
    blocks: list[list[list[tuple[int, int, str]]]] = []
    current: list[list[tuple[int, int, str]]] = []
    blank_run = 0
    for line in layout.split("\n"):
        cells = [(m.start(), m.end(), m.group()) for m in _LAYOUT_CELL.finditer(line)]
        if len(cells) >= 2:
            current.append(cells)
            blank_run = 0
            continue
        if not cells and current and blank_run == 0:
            blank_run = 1  # one blank line between rows (rows set far apart) does not end a table
            continue
        if current:
            blocks.append(current)
        current, blank_run = [], 0
    if current:
        blocks.append(current)

    def edges(row: list[tuple[int, int, str]]) -> set[int]:
        return {c[0] for c in row} | {-c[1] for c in row}  # starts, and (negated) ends

    def aligned(row: list[tuple[int, int, str]], others: list[list[tuple[int, int, str]]]) -> bool:
        theirs = set().union(*(edges(o) for o in others)) if others else set()
        near = {e + d for e in theirs for d in (-1, 0, 1)}
        return sum(1 for c in row if c[0] in near or -c[1] in near) >= 2

    out = []
    for block in blocks:
        if len(block) < 2:
            continue
        if not all(aligned(row, [o for o in block if o is not row]) for row in block):
            continue
        words = sorted(len(c[2].split()) for row in block for c in row)
        if words[len(words) // 2] > MAX_WORDS_PER_CELL:
            continue
        out.append(block)
    return out


def _columns(block: list[list[tuple[int, int, str]]]) -> list[list[str]]:
    """The block's rows with a cell per column, empty where a row has none: columns are the unions
    of overlapping cell spans (left-, right- or centre-aligned cells of a column overlap). Where that
    does not give one cell per column, the rows' cells as they are."""
    spans: list[list[int]] = []
    for start, end in sorted((c[0], c[1]) for row in block for c in row):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    plain_rows = [[c[2] for c in row] for row in block]
    if len(spans) < max(len(row) for row in block):
        return plain_rows
    rows = []
    for row in block:
        out = [""] * len(spans)
        for start, end, text in row:
            col = next(i for i, (a, b) in enumerate(spans) if a <= start and end <= b)
            if out[col]:
                return plain_rows
            out[col] = text
        rows.append(out)
    return rows


def align_table_rows(plain: str, layout: str) -> str:
    """``plain`` with each table's cells joined into tab-separated rows.

    pypdf's plain text gives a table cell by cell, one per line. Its layout mode keeps each row on
    one line, cells apart by two or more spaces, but spaces out everything else too. So the plain
    text is kept, and a run of its lines is replaced only where it is exactly the cells of a table
    found in the layout (same cells, same order); where the two disagree, the plain text stays as it is.
    """
    if not layout.strip():
        return plain
    lines = plain.split("\n")
    norm = [" ".join(line.split()) for line in lines]
    for block in _layout_rows(layout):
        rows = [[c[2] for c in row] for row in block]
        cells = [" ".join(c.split()) for row in rows for c in row]
        joined = [" ".join(row) for row in rows]
        for seq, width in ((cells, len(cells)), (joined, len(joined))):
            at = next((i for i in range(len(norm) - width + 1) if norm[i:i + width] == seq), None)
            if at is not None:
                tab_rows = ["\t".join(row) for row in _columns(block)]
                lines[at:at + width] = tab_rows
                norm[at:at + width] = [None] * len(tab_rows)  # type: ignore[list-item]  (never matched again)
                break
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- docx


def _load_docx(path: Path, data: bytes) -> str:
    if not data.startswith(b"PK"):
        raise LoadError(path, "not a .docx (not a zip package)")
    import io
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(path, f"corrupt or unreadable .docx ({type(exc).__name__}: {exc})") from None

    blocks: list[tuple[str, str]] = []  # (kind, text): kind in heading, para, item, row
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            blocks.extend(("row", row) for row in _docx_table_rows(block))
            blocks.append(("break", ""))
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.startswith("Heading") or style in ("Title", "Subtitle"):
            blocks.append(("heading", text))
        elif style.startswith("List"):
            blocks.append(("item", ("- " + text) if "Bullet" in style else text))
        else:
            blocks.append(("para", text))
    return _join_blocks(blocks)


def _docx_table_rows(table) -> list[str]:
    rows: list[str] = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is repeated once per grid column
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append("\t".join(cells))
    return rows


# --------------------------------------------------------------------------------------------- html

_HTML_DROP = {"script", "style", "nav", "noscript", "template", "head", "svg", "iframe", "object", "canvas"}
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = _HTML_HEADINGS | {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre",
    "ul", "ol", "dl", "dt", "dd", "li", "table", "thead", "tbody", "tfoot", "caption", "figure",
    "figcaption", "address", "form", "fieldset", "details", "summary", "body", "html", "hr",
}


def _load_html(path: Path, data: bytes) -> str:
    if b"\x00" in data:
        raise LoadError(path, "binary file (contains NUL bytes), not HTML")
    from bs4 import BeautifulSoup, NavigableString, Tag

    soup = BeautifulSoup(data, "html.parser")
    blocks: list[tuple[str, str]] = []
    buf: list[str] = []
    kind_stack: list[str] = ["para"]

    def flush() -> None:
        text = " ".join("".join(buf).split())
        buf.clear()
        if text and text != "-":
            blocks.append((kind_stack[-1], text))

    def cell_text(cell: Tag) -> str:
        return " ".join(cell.get_text(" ").split())

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a comment, doctype, declaration ...
                    buf.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = (child.name or "").lower()
            if name in _HTML_DROP or child.has_attr("hidden"):
                continue
            if name == "br":
                flush()
                continue
            if name == "tr":
                flush()
                cells = [cell_text(c) for c in child.find_all(["td", "th"], recursive=False)]
                if any(cells):
                    blocks.append(("row", "\t".join(cells)))
                continue
            if name in _HTML_BLOCKS:
                flush()
                kind = "heading" if name in _HTML_HEADINGS else "item" if name in ("li", "dt", "dd") else None
                if kind:
                    kind_stack.append(kind)
                if name == "li" and child.parent is not None and child.parent.name == "ul":
                    buf.append("- ")
                walk(child)
                flush()
                if kind:
                    kind_stack.pop()
                if name == "table":
                    blocks.append(("break", ""))
            else:
                walk(child)

    walk(soup)
    flush()
    return _join_blocks(blocks)


def _join_blocks(blocks: list[tuple[str, str]]) -> str:
    """One line per block; a blank line between blocks except inside runs of list items or table rows."""
    out: list[str] = []
    prev = None
    for kind, text in blocks:
        if kind == "break":
            prev = "break"
            continue
        if out and not (kind == prev and kind in ("item", "row")):
            out.append("")
        out.append(text)
        prev = kind
    return "\n".join(out)


_LOADERS: dict[str, Callable[[Path, bytes], str]] = {
    ".txt": _load_plain,
    ".md": _load_plain,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".html": _load_html,
    ".htm": _load_html,
}
