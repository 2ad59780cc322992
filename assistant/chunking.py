"""Structure-aware chunking: source text -> passages (llama-index ``TextNode``) that keep where they came from.

The seeds are PDF extractions: page markers (``----Page 42 End----``), running headers
(``Page 35``, and the lines a document's family repeats, from the catalog: ``C/112/INF/1``), numbered paragraphs, bullets and tables flattened into
tab-separated rows, or laid out with spaces (``tables.space_tables``), and footnotes at the foot of
a page. Passages never cross a page or a section; table passages repeat the table's title and header
row so a row still says what its numbers are, and a passage repeats the footnotes its sentences cite
when they stand elsewhere (the next page, the next passage), so a sentence and its note are evidence
together.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import tiktoken
from llama_index.core.schema import TextNode

from assistant.records import DocumentInfo
from assistant.tables import COUNTS, space_tables
from assistant.text import CURRENCY_CODES, FOOTNOTE, closes_sentence, footnotes, note_marks

CHUNKER_VERSION = "9"
TABLE_CONTEXT = "(Table:"

PAGE_END = re.compile(r"^-{5,}Page (\d+) End-{5,}\s*$")
PRINTED_PAGE = re.compile(r"^Page\s+([0-9]+|[ivxlc]+)$", re.IGNORECASE)
CAPTION = re.compile(r"^(?:Table|Tabell|Figure|Figur)\s+\d+\b", re.I)
"""The caption that names the table below it, when it is not a heading (it runs over two lines)."""
NUMBERED_PARA = re.compile(r"^(\d{1,3})\.\s+\S")
BULLET = re.compile(r"^\s*(?:[-•▪●◦*]|\d{1,2}\)|[a-z]\))\s+")
ANNEX = re.compile(r"^(?:Annex|ANNEX|Appendix|Bilaga)\b")
CURRENCY = re.compile(rf"\b({CURRENCY_CODES})\b")
SCALE = re.compile(rf"\b({CURRENCY_CODES})\s+(million|billion|thousand|miljoner|miljarder)\b", re.I)
"""A table's figures are in millions (or thousands, billions): "(DKK million)", "in DKK million"."""
LINK_ONLY = re.compile(r"^\S+\s*<?https?://\S*$")
"""A footnote that is only a web address ("¹⁷ https://www.iom.md/...")."""
NOTE_LINES = 6
"""How far after a table a short note on its unit may stand ("(Contribution in DKK million).")."""

# Metadata that identifies a passage to a reader and a ranker; the rest is bookkeeping.
CONTEXT_KEYS = ("title", "section")
BOOKKEEPING_KEYS = (
    "document_id", "page", "printed_page", "paragraph", "kind", "language", "year",
    "start", "end", "currency", "scale", "table_header", "prev_id", "next_id",
)


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


@dataclass
class Line:
    start: int
    end: int
    text: str
    page: int | None
    printed_page: str | None = None

    @property
    def stripped(self) -> str:
        return self.text.strip()

    @property
    def is_blank(self) -> bool:
        return not self.stripped

    @property
    def cells(self) -> list[str]:
        return [c.strip() for c in self.text.split("\t") if c.strip()]

    @property
    def is_tab_row(self) -> bool:
        return "\t" in self.text.strip("\n") and bool(self.cells)


@dataclass
class Unit:
    """A paragraph, bullet, sentence group or table row: the smallest thing a passage holds whole."""

    lines: list[Line]
    kind: str  # "text" | "table"
    section: str | None
    paragraph: str | None = None
    table_id: int | None = None

    @property
    def start(self) -> int:
        return self.lines[0].start

    @property
    def end(self) -> int:
        return self.lines[-1].end

    @property
    def page(self) -> int | None:
        return self.lines[0].page


@dataclass
class Table:
    title: str | None
    header: str | None
    caption_lines: list[str] = field(default_factory=list)
    currency: str | None = None
    scale: str | None = None
    """The unit its figures are in ("million"), when its title, caption, header or a note after it says."""
    last_line: int = 0
    captioned: bool = False
    """Its title is the caption above it ("Table 4. ..."), not a heading: the section of its rows."""


@lru_cache(maxsize=32)
def _running_header(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None


def _is_running_header(stripped: str, family: re.Pattern[str] | None) -> bool:
    return (len(stripped) < 20 and PRINTED_PAGE.match(stripped) is not None) or bool(family and family.fullmatch(stripped))


def split_lines(text: str, running_headers: Sequence[str] = ()) -> list[Line]:
    """Lines with source offsets and PDF page; page markers and running headers (printed page
    numbers, and lines matching one of ``running_headers``, the document family's) removed."""
    family = _running_header(tuple(running_headers))
    has_markers = any(PAGE_END.match(m) for m in text.splitlines()[:2000] if "Page" in m)
    page = 1 if has_markers else None
    out: list[Line] = []
    header_zone = 0  # non-blank lines after a page marker that may be a running header
    printed: str | None = None
    pos = 0
    for raw in text.splitlines(keepends=True):
        start, pos = pos, pos + len(raw)
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        m = PAGE_END.match(stripped)
        if m:
            page = int(m.group(1)) + 1
            header_zone, printed = 3, None
            out.append(Line(start, start, "", None))  # a hard break
            continue
        if stripped and (header_zone > 0 or page is None) and _is_running_header(stripped, family):
            if page is not None:
                hm = PRINTED_PAGE.match(stripped)
                printed = hm.group(1) if hm else printed
                for line in reversed(out):  # lines already seen on this page get the printed number too
                    if line.page != page:
                        break
                    line.printed_page = printed
            header_zone -= 1
            continue
        if stripped:
            header_zone = max(0, header_zone - 1)
        out.append(Line(start, start + len(body), body, page, printed))
    return out


def _is_heading(lines: list[Line], i: int) -> bool:
    line = lines[i]
    s = line.stripped
    if not s or line.is_tab_row or len(s) > 100 or BULLET.match(line.text) or FOOTNOTE.match(s):
        return False
    if s[0] == "*":  # an emphasised title ("*Migration Governance Framework*") or an asterisk note
        return False
    prev_blank = i == 0 or lines[i - 1].is_blank
    next_blank = i + 1 >= len(lines) or lines[i + 1].is_blank
    if ANNEX.match(s) and not re.search(r"\.{4,}", s):
        return prev_blank
    if not prev_blank:
        return False
    if NUMBERED_PARA.match(s) and (len(s) > 70 or not next_blank):
        return False
    words = s.split()
    if len(words) > 14 or s[0].islower() or s[-1] in ".,;":
        return False
    if s[-1] == ":" and len(words) > 6:
        return False
    return next_blank  # a short line standing alone


def _heading_level(s: str) -> int:
    if ANNEX.match(s) or re.match(r"^\d{1,2}\.?\s+[A-ZÅÄÖ]", s) or (s.isupper() and len(s) > 3):
        return 1
    return 2


def _document_currency(text: str) -> str | None:
    counts = Counter(CURRENCY.findall(text))
    return counts.most_common(1)[0][0] if counts else None


def segment(lines: list[Line], doc_currency: str | None) -> tuple[list[Unit], dict[int, Table]]:
    """Group lines into units (paragraphs, bullets, numbered paragraphs, table rows) with their section."""
    units: list[Unit] = []
    tables: dict[int, Table] = {}
    top: str | None = None
    sub: str | None = None
    current: list[Line] = []
    current_para: str | None = None
    table_id: int | None = None
    last_text: tuple[int, str] | None = None  # (line number, text) of the last prose line

    def section() -> str | None:
        return " > ".join(p for p in (top, sub) if p) or None

    def flush() -> None:
        nonlocal current, current_para
        if current:
            units.append(Unit(current, "text", section(), current_para))
        current, current_para = [], None

    spaced = space_tables([line.text for line in lines])  # tables laid out with spaces: line -> cells

    def is_row(i: int) -> bool:
        return lines[i].is_tab_row or i in spaced

    for i, line in enumerate(lines):
        s = line.stripped
        if is_row(i):
            flush()
            if table_id is None:
                table_id = len(tables)
                title = section()
                near = last_text is not None and i - last_text[0] <= 3 and not BULLET.match(last_text[1])
                caption = [last_text[1]] if near and last_text[1] not in (top, sub) else []
                named = units[-1] if near and units and units[-1].kind == "text" else None
                captioned = named is not None and bool(CAPTION.match(named.lines[0].stripped)) and len(named.lines) <= 3
                if captioned:  # "Table 4. Increase ... / and previous years": its rows' section, not a passage
                    title = " ".join(ln.stripped for ln in units.pop().lines)
                tables[table_id] = Table(title=title, header=None, caption_lines=caption, captioned=captioned)
            table = tables[table_id]
            table.last_line = i
            cells = spaced.get(i) or line.cells
            if table.header is None and len(cells) >= 2:
                table.header = "\t".join(cells)
            elif table.header is None:
                table.caption_lines.append(s)
            units.append(Unit([line], "table", table.title if table.captioned else section(), None, table_id))
            continue
        if table_id is not None and (line.is_blank and i + 1 < len(lines) and is_row(i + 1)):
            continue  # a blank line inside a table
        if table_id is not None:
            table_id = None
        if line.is_blank:
            flush()
            continue
        if _is_heading(lines, i):
            flush()
            if _heading_level(s) == 1:
                top, sub = s, None
            else:
                sub = s
            continue
        m = NUMBERED_PARA.match(s)
        if m or BULLET.match(line.text):
            flush()
            current_para = m.group(1) if m else None
        current.append(line)
        last_text = (i, s)
    flush()
    for t in tables.values():
        context = " ".join([t.title or "", *t.caption_lines, t.header or ""])
        notes = [ln.stripped for ln in lines[t.last_line + 1: t.last_line + 1 + NOTE_LINES] if len(ln.stripped) < 80]
        scale = SCALE.search(context) or next((m for n in notes if (m := SCALE.search(n))), None)
        found = CURRENCY.search(context) or scale
        t.currency = found.group(1) if found else (None if COUNTS.search(context) else doc_currency)
        t.scale = scale.group(2).lower() if scale else None
    return units, tables


def _split_long(unit: Unit, source: str, limit: int) -> list[Unit]:
    """Split a unit longer than ``limit`` tokens at sentence ends (into line-aligned pieces)."""
    if unit.kind == "table" or count_tokens(source[unit.start:unit.end]) <= limit:
        return [unit]
    pieces: list[Unit] = []
    buf: list[Line] = []
    for line in unit.lines:
        buf.append(line)
        tokens = count_tokens(source[buf[0].start:buf[-1].end])
        if tokens >= limit or (tokens >= 0.8 * limit and closes_sentence(line.text)):
            pieces.append(Unit(buf, unit.kind, unit.section, unit.paragraph))
            buf = []
    if buf:
        pieces.append(Unit(buf, unit.kind, unit.section, unit.paragraph))
    return pieces


def passage_id(document_id: str, start: int, end: int) -> str:
    return hashlib.sha1(f"{document_id}:{start}:{end}".encode()).hexdigest()[:16]


def _cited_notes(body: str, at: int, notes: list[tuple[int, str, str]]) -> list[str]:
    """The footnotes (``notes``: (offset, mark, line) of the document's) that ``body`` (at offset ``at``)
    cites and does not hold: for each mark, the first footnote with it after the body, else the last before.
    A note that is only a link says nothing a reader or a ranker can use."""
    held = footnotes(body)
    out: list[str] = []
    for mark in dict.fromkeys(m for m in note_marks(body) if m not in held):
        same = [(offset, line) for offset, m, line in notes if m == mark]
        line = next((ln for offset, ln in same if offset >= at), same[-1][1] if same else None)
        if line and line not in out and not LINK_ONLY.match(line):
            out.append(line)
    return out


def _make_node(doc: DocumentInfo, source: str, units: list[Unit], tables: dict[int, Table],
               notes: list[tuple[int, str, str]] = ()) -> TextNode:
    first, last = units[0], units[-1]
    body = source[first.start:last.end]
    kind = "table" if all(u.kind == "table" for u in units) else "text"
    table = tables.get(first.table_id) if first.table_id is not None else None
    text = "\n\n".join([body, *_cited_notes(body, first.start, notes)])
    if table is not None:
        # The passage starts with its exact source text (citations quote it and scorers find it in
        # the document); what the rows mean, the table's title and header, follows when not in view.
        parts = []
        if table.title and table.title not in body:
            parts.append(table.title)
        if table.header and table.header not in body:
            parts.append("columns: " + " | ".join(table.header.split("\t")))
        if parts:
            text = f"{text}\n{TABLE_CONTEXT} {'; '.join(parts)})"
    paragraphs = [u.paragraph for u in units if u.paragraph]
    printed = next((ln.printed_page for u in units for ln in u.lines if ln.printed_page), None)
    metadata = {
        "document_id": doc.id,
        "title": doc.title,
        "section": first.section,
        "page": first.page,
        "printed_page": printed,
        "paragraph": (paragraphs[0] if len(paragraphs) == 1 else f"{paragraphs[0]}-{paragraphs[-1]}") if paragraphs else None,
        "kind": kind,
        "language": doc.language,
        "year": doc.year,
        "start": first.start,
        "end": last.end,
        "currency": table.currency if table else None,
        "scale": table.scale if table else None,
        "table_header": table.header if table else None,
    }
    return TextNode(
        id_=passage_id(doc.id, first.start, last.end),
        text=text,
        metadata=metadata,
        start_char_idx=first.start,
        end_char_idx=last.end,
        excluded_embed_metadata_keys=list(BOOKKEEPING_KEYS),
        excluded_llm_metadata_keys=list(BOOKKEEPING_KEYS),
    )


def chunk_document(doc: DocumentInfo, source: str, chunk_tokens: int = 256) -> list[TextNode]:
    """Split ``source`` into passages of at most ~``chunk_tokens`` tokens along its structure."""
    lines = split_lines(source, doc.running_headers)
    units, tables = segment(lines, _document_currency(source))
    units = [piece for u in units for piece in _split_long(u, source, chunk_tokens)]
    notes = [(ln.start, m.group(1), ln.stripped) for ln in lines if (m := FOOTNOTE.match(ln.text))]

    nodes: list[TextNode] = []
    group: list[Unit] = []
    group_tokens = 0
    for unit in units:
        tokens = count_tokens(source[unit.start:unit.end])
        same_place = bool(group) and (
            unit.page == group[-1].page
            and unit.section == group[-1].section
            and unit.table_id == group[-1].table_id
        )
        if group and (not same_place or group_tokens + tokens > chunk_tokens):
            nodes.append(_make_node(doc, source, group, tables, notes))
            group, group_tokens = [], 0
        group.append(unit)
        group_tokens += tokens
    if group:
        nodes.append(_make_node(doc, source, group, tables, notes))
    for prev, nxt in zip(nodes, nodes[1:]):
        prev.metadata["next_id"], nxt.metadata["prev_id"] = nxt.node_id, prev.node_id
    return nodes
