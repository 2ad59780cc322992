"""The cells of a table row, however the source lays the table out.

- **Tabs** (the Danish annex): ``"Unearmarked\\t\\t3 508 772"``; empty cells keep their column.
- **Runs of spaces** (the 2020 annual report's statistics): ``"Men      662     788    928"``.
- **Single spaces** (the 2019 annual report's): ``"Total 1 656 5 397 9 282"``: a label, then
  figures whose thousands are grouped by a space. Read only when the table's width is known, and
  only when the tokens can be read as that many figures in exactly one way.

``space_tables`` finds the tables of the last two kinds in a document's lines: a header of column
headings (runs of spaces, or a label and at least three years) and the rows below it that have as
many cells. The chunker keeps their rows whole, as it does tab-separated rows, and stores the
header tab-separated, so every later stage reads ``row_cells(row, header)`` whatever the layout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from assistant.text import YEAR, numbers_in

COLUMN_GAP = re.compile(r"\t| {2,}")
"""What separates the cells of an aligned row."""
LONE_FIGURE = re.compile(r"^[-+–]?\(?(?:0|[1-9]\d*)(?:[.,]\d+)?\)?%?$|^[-–]$")
"""A token that is a whole figure by itself ("662", "45%", "+1%", "(128", a dash for an empty cell)."""
GROUP_HEAD = re.compile(r"^[-+]?\(?[1-9]\d{0,2}$")
"""The first token of a figure whose thousands are grouped by spaces ("1" of "1 062")."""
GROUP = re.compile(r"^\d{3}$")
GROUP_LAST = re.compile(r"^\d{3}(?:[.,]\d+)?\)?%?$")
COUNTS = re.compile(r"\bnumber of\b|\bpercentage\b|\bper cent\b|\bantal\b|\bandel(?:en)?\b", re.I)
"""Words by which a table or a row says it counts (people, Member States) or gives shares: its
figures are not in the document's currency."""
MIN_COLUMNS = 3
MIN_ROWS = 2


def _figures_at(tokens: Sequence[str], i: int) -> list[int]:
    """Where a figure that starts at token ``i`` may end (exclusive): a lone token, or a group head
    and groups of three digits."""
    ends = [i + 1] if LONE_FIGURE.match(tokens[i]) else []
    if GROUP_HEAD.match(tokens[i]):
        j = i + 1
        while j < len(tokens) and GROUP_LAST.match(tokens[j]):
            ends.append(j + 1)
            if not GROUP.match(tokens[j]):
                break
            j += 1
    return ends


MAX_READINGS = 64


def _readings(tokens: Sequence[str], n: int) -> list[list[str]]:
    """Readings of ``tokens`` as ``n`` figures (at most ``MAX_READINGS``)."""
    found: list[list[str]] = []

    def walk(i: int, acc: list[str]) -> None:
        if len(found) >= MAX_READINGS or len(acc) > n or len(tokens) - i < n - len(acc):
            return
        if i == len(tokens):
            if len(acc) == n:
                found.append(list(acc))
            return
        for e in _figures_at(tokens, i):
            walk(e, acc + [" ".join(tokens[i:e])])

    walk(0, [])
    return found


def _jaggedness(figures: list[str]) -> float:
    """How far apart in magnitude neighbouring figures are: a row's cells are of a size."""
    sizes = [math.log10(1 + float(next(iter(numbers_in(f)), 0))) for f in figures]
    return sum(abs(a - b) for a, b in zip(sizes, sizes[1:]))


def _reading(tokens: Sequence[str], n: int) -> tuple[int, list[str] | None]:
    """(how many readings of ``tokens`` as ``n`` figures there are, the best): of several, the one
    whose neighbouring figures are closest in size ("222 667 1 062 1 193" is 222, 667, 1 062, 1 193,
    not 222 667, 1 062, 1, 193); None when two are equally good."""
    readings = _readings(tokens, n)
    if len(readings) <= 1:
        return len(readings), (readings[0] if readings else None)
    ranked = sorted(readings, key=_jaggedness)
    if math.isclose(_jaggedness(ranked[0]), _jaggedness(ranked[1])):
        return len(readings), None
    return len(readings), ranked[0]


def figure_cells(line: str, width: int) -> list[str] | None:
    """A single-spaced row read as a label and ``width - 1`` figures, or None when it cannot be read
    so, or can be in more than one way."""
    tokens = line.split()
    start = len(tokens)
    while start > 0 and (LONE_FIGURE.match(tokens[start - 1]) or GROUP_LAST.match(tokens[start - 1])):
        start -= 1
    for k in range(start, len(tokens)):  # the label may end in a figure ("Percentage of women in 2019")
        count, figures = _reading(tokens[k:], width - 1)
        if count:  # else the label may end in a figure: read one token fewer
            return [" ".join(tokens[:k]), *figures] if figures else None
    return None


def aligned_cells(line: str) -> list[str]:
    """The cells of a row laid out with tabs or runs of spaces; empty cells dropped."""
    return [c.strip() for c in COLUMN_GAP.split(line.strip()) if c.strip()]


def row_cells(row: str, header: str | None = None) -> list[str]:
    """A row's cells. Tab-separated: every cell, empty ones too (they hold their column). Else cells
    apart by runs of spaces, or, single-spaced, a label and as many figures as ``header`` (tab-separated)
    has columns after its first."""
    if "\t" in row:
        return [c.strip() for c in row.split("\t")]
    cells = aligned_cells(row)
    if len(cells) == 1 and header:
        return figure_cells(row, len(header.split("\t"))) or cells
    return cells


def _header_cells(line: str) -> list[str] | None:
    """Column headings: at least ``MIN_COLUMNS`` apart by runs of spaces, or a label (maybe none)
    and at least ``MIN_COLUMNS`` years."""
    cells = aligned_cells(line)
    if len(cells) >= MIN_COLUMNS and not any(LONE_FIGURE.match(c) and not YEAR.fullmatch(c) for c in cells):
        return cells
    tokens = line.split()
    years = 0
    while years < len(tokens) and YEAR.fullmatch(tokens[len(tokens) - 1 - years]):
        years += 1
    if years >= MIN_COLUMNS and len(cells) == 1:
        return [" ".join(tokens[:len(tokens) - years]), *tokens[len(tokens) - years:]]
    return None


def _row(line: str, header: list[str]) -> list[str] | None:
    """The row's cells when it fits under ``header``: as many cells (or one more, a label under a
    header that has none), a label first and figures after it."""
    cells = aligned_cells(line)
    if len(cells) == 1:
        cells = figure_cells(line, len(header)) or []
    if len(cells) not in (len(header), len(header) + 1) or not cells[0] or LONE_FIGURE.match(cells[0]):
        return None
    return cells if all(LONE_FIGURE.match(c) or GROUP_LAST.match(c.split()[-1]) for c in cells[1:]) else None


def space_tables(lines: Sequence[str]) -> dict[int, list[str]]:
    """The header and rows of every table laid out with spaces: line index -> its cells (a header
    over label-less columns gets an empty first cell, as its rows have a label)."""
    found: dict[int, list[str]] = {}
    i = 0
    while i < len(lines):
        header = _header_cells(lines[i]) if "\t" not in lines[i] else None
        if header is None:
            i += 1
            continue
        rows: dict[int, list[str]] = {}
        j, width = i + 1, None
        while j < len(lines):
            if not lines[j].strip():
                j += 1
                continue
            cells = _row(lines[j], header if width is None or width == len(header) else ["", *header])
            if cells is None or (width is not None and len(cells) != width):
                break
            width = len(cells)
            rows[j] = cells
            j += 1
        if len(rows) >= MIN_ROWS:
            found[i] = header if width == len(header) else ["", *header]
            found.update(rows)
            i = j
        else:
            i += 1
    return found
