"""Pure functions that turn service records into what the browser shows.

Nothing here touches Gradio or the service: every function takes records (or plain values)
and returns a string, so the formatting is unit-testable on its own.

HTML produced here is rendered unsanitised by the chat widget, so every piece of text that
comes from a document or from the answerer goes through :func:`esc` first.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from assistant.records import Answer, Citation, PassageOut
from assistant.render import answer_with_sources

NOT_FOUND_TITLE = "Not found in the documents"

LANGUAGE_NAMES = {"en": "English", "sv": "Svenska (Swedish)", "da": "Dansk (Danish)", "fr": "Français", "es": "Español"}

_MARKER_RE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def esc(text: str | None) -> str:
    return html.escape(text or "", quote=True)


def language_name(code: str | None) -> str:
    if not code:
        return "unknown"
    return LANGUAGE_NAMES.get(code, code)


# --- quote highlighting ---------------------------------------------------------------


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` sits in ``text``: exact first, then ignoring whitespace differences and case.

    Returns the (start, end) character span in ``text`` or ``None``.
    """
    quote = (quote or "").strip()
    if not text or not quote:
        return None
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    words = quote.split()
    pattern = r"\s+".join(re.escape(w) for w in words)
    m = re.search(pattern, text, flags=re.IGNORECASE)
    if m:
        return m.start(), m.end()
    # Quotes that end in punctuation the passage lacks (or vice versa).
    trimmed = quote.strip(" .;:,\u2026\"'\u201c\u201d")
    if trimmed and trimmed != quote:
        return find_quote(text, trimmed)
    return None


def highlight_quote(text: str, quote: str | None) -> str:
    """The passage as HTML with the supporting quote wrapped in ``<mark>``; escaped throughout."""
    span = find_quote(text, quote or "")
    if span is None:
        return esc(text)
    a, b = span
    return f"{esc(text[:a])}<mark>{esc(text[a:b])}</mark>{esc(text[b:])}"


# --- the answer in the chat -------------------------------------------------------------


def _marker_html(n: int, answer_no: int) -> str:
    return (
        f'<button type="button" class="cite-marker" data-answer="{answer_no}" data-cite="{n}" '
        f'title="Show source {n}">[{n}]</button>'
    )


def link_markers(escaped_text: str, cited: Iterable[int], answer_no: int) -> str:
    """Turn ``[1]`` / ``[1, 2]`` markers for cited sources into clickable buttons.

    ``escaped_text`` must already be HTML-escaped (brackets and digits survive escaping).
    Markers that name no citation stay as plain text.
    """
    cited = set(cited)

    def repl(m: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        if not all(n in cited for n in nums):
            return m.group(0)
        return "".join(_marker_html(n, answer_no) for n in nums)

    return _MARKER_RE.sub(repl, escaped_text)


_BOLD_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def _emphasis(escaped: str) -> str:
    """The answerer's markdown bold (``**x**``) as ``<strong>``; the rest of the text stays literal."""
    return _BOLD_RE.sub(r"<strong>\1</strong>", escaped)


def plain_text(text: str) -> str:
    """Answer text without the answerer's markdown bold markers (for pasting into an email)."""
    return _BOLD_RE.sub(r"\1", text)


def _paragraphs(escaped: str) -> str:
    # One line of HTML (no raw newlines) so the markdown renderer keeps it as a single HTML block.
    escaped = escaped.replace("\r\n", "\n").replace("\t", "&#9;")
    return escaped.replace("\n", "<br>")


def answer_html(answer: Answer | Mapping[str, Any], answer_no: int = 0, partial_text: str | None = None) -> str:
    """The assistant's chat message for ``answer``.

    ``partial_text`` is the part of the answer streamed so far (``None`` once complete).
    A refused answer is rendered as a distinct "not found" notice, never as an answer.
    """
    ans = answer if isinstance(answer, Answer) else Answer.model_validate(answer)
    if not ans.answered:
        return refused_html(ans)
    text = ans.answer if partial_text is None else partial_text
    body = _paragraphs(link_markers(_emphasis(esc(text)), (c.n for c in ans.citations), answer_no))
    state = "streaming" if partial_text is not None else "complete"
    footer = ""
    if partial_text is None and ans.citations:
        n = len(ans.citations)
        footer = (
            f'<div class="answer-foot">{n} source{"s" if n != 1 else ""} '
            "\u2014 click a marker to see the passage</div>"
        )
    return (
        f'<div class="answer-ok" data-answer="{answer_no}" data-state="{state}">'
        f'<div class="answer-body">{body}</div>{footer}</div>'
    )


def refused_html(answer: Answer) -> str:
    detail = answer.answer.strip()
    if detail.lower().rstrip(".") == NOT_FOUND_TITLE.lower():
        detail = ""
    k = len(answer.passages)
    closest = (
        f"The {k} closest passage{'s are' if k != 1 else ' is'} listed beside the chat; "
        "none of them supports an answer."
        if k
        else "No passage came close."
    )
    detail_html = f'<div class="refused-detail">{_paragraphs(esc(detail))}</div>' if detail else ""
    return (
        '<div class="answer-refused" data-state="refused">'
        f'<div class="refused-title">{NOT_FOUND_TITLE}</div>'
        f"{detail_html}<div class=\"refused-closest\">{closest}</div></div>"
    )


def question_html(question: str) -> str:
    """The user's question in the chat: escaped like every other text (the widget renders HTML unsanitised)."""
    return f'<div class="user-question">{_paragraphs(esc(question))}</div>'


def error_html(message: str) -> str:
    return f'<div class="answer-error"><strong>Could not answer:</strong> {esc(message)}</div>'


def stream_pieces(text: str, words_per_piece: int = 3) -> Iterator[str]:
    """Successively longer prefixes of ``text``, ending with the whole text (for streaming)."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    if not tokens:
        yield text
        return
    for i in range(words_per_piece, len(tokens), words_per_piece):
        yield "".join(tokens[:i])
    yield text


# --- the sources panel ------------------------------------------------------------------


def _meta(page: int | None, section: str | None) -> str:
    parts = []
    if page is not None:
        parts.append(f"p. {page}")
    if section:
        parts.append(esc(section))
    return " \u00b7 ".join(parts)


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def citation_card(c: Citation, passage_text: str | None, answer_no: int) -> str:
    meta = _meta(c.page, c.section)
    passage_text = (passage_text or "").strip("\n")
    if passage_text:
        body = highlight_quote(passage_text, c.quote)
        if find_quote(passage_text, c.quote) is None:
            body = f'<div class="quote-only">Supporting quote: <mark>{esc(c.quote)}</mark></div>{body}'
    else:
        body = f"<mark>{esc(c.quote)}</mark>"
    return (
        f'<details class="source" id="src-{answer_no}-{c.n}" data-cite="{c.n}" data-passage="{esc(c.passage_id)}">'
        f'<summary><span class="src-n">[{c.n}]</span> <span class="src-title">{esc(c.title)}</span>'
        f'{f" <span class=src-meta>{meta}</span>" if meta else ""}'
        f'<span class="src-preview">\u201c{esc(_shorten(c.quote))}\u201d</span></summary>'
        f'<div class="passage">{body}</div></details>'
    )


def passage_card(p: PassageOut, rank: int, answer_no: int) -> str:
    meta = _meta(p.page, p.section)
    return (
        f'<details class="source closest" id="src-{answer_no}-p{rank}" data-passage="{esc(p.id)}">'
        f'<summary><span class="src-n">{rank}.</span> <span class="src-title">{esc(p.title)}</span>'
        f'{f" <span class=src-meta>{meta}</span>" if meta else ""}'
        f'<span class="src-preview">{esc(_shorten(p.text))}</span></summary>'
        f'<div class="passage">{esc(p.text.strip(chr(10)))}</div></details>'
    )


def sources_section(answer: Answer | Mapping[str, Any], answer_no: int, extra_texts: Mapping[str, str] | None = None) -> str:
    """The sources of one answer: cited passages (quote highlighted) or, if refused, the closest passages."""
    ans = answer if isinstance(answer, Answer) else Answer.model_validate(answer)
    texts = {p.id: p.text for p in ans.passages}
    texts.update(extra_texts or {})
    if ans.answered:
        head = '<h3 class="sources-head">Sources</h3>'
        if ans.citations:
            cards = "".join(citation_card(c, texts.get(c.passage_id), answer_no) for c in ans.citations)
        else:
            cards = '<p class="sources-empty">The answer cites no passage.</p>'
        kind = "answered"
    else:
        head = (
            '<h3 class="sources-head">Closest passages</h3>'
            f'<p class="closest-note">{NOT_FOUND_TITLE}. These passages came closest but do not answer the question.</p>'
        )
        cards = "".join(passage_card(p, i, answer_no) for i, p in enumerate(ans.passages, 1)) or (
            '<p class="sources-empty">No passage came close.</p>'
        )
        kind = "refused"
    return f'<section class="answer-sources {kind}" data-answer="{answer_no}">{head}{cards}</section>'


def sources_panel(sections: Iterable[str], shown: int | None = None) -> str:
    """All answers' source sections; only the section of answer ``shown`` (default: the last) is visible.

    Clicking a marker in an older answer switches the panel to that answer's sources (client side).
    """
    sections = list(sections)
    if not sections:
        return (
            '<div class="sources-panel" id="sources-panel"><div class="sources-placeholder">'
            "Ask a question: the passages behind the answer appear here, with the supporting quote highlighted."
            "</div></div>"
        )
    shown = len(sections) - 1 if shown is None else shown
    out = []
    for i, s in enumerate(sections):
        if i != shown:
            s = s.replace('<section class="answer-sources', '<section hidden class="answer-sources', 1)
        out.append(s)
    return f'<div class="sources-panel" id="sources-panel">{"".join(out)}</div>'


# --- copy text ----------------------------------------------------------------------------


def copy_text(answer: Answer | Mapping[str, Any]) -> str:
    """Plain text for an e-mail: the answer, then its numbered sources (``assistant.render``, as the CLI prints it)."""
    ans = answer if isinstance(answer, Answer) else Answer.model_validate(answer)
    return answer_with_sources(ans, markdown=False)


# --- documents view -----------------------------------------------------------------------


def documents_table_html(docs: Iterable[Any]) -> str:
    """The catalog as an HTML table: title, publisher, year (period), language, type, passages."""
    rows = []
    for d in docs:
        year = getattr(d, "period", None) or getattr(d, "year", None) or ""
        rows.append(
            "<tr>"
            f'<td class="doc-title">{esc(d.title)}</td>'
            f"<td>{esc(getattr(d, 'publisher', ''))}</td>"
            f"<td>{esc(str(year))}</td>"
            f"<td>{esc(language_name(getattr(d, 'language', None)))}</td>"
            f"<td>{esc(str(getattr(d, 'doc_type', '')).replace('_', ' '))}</td>"
            f'<td class="num">{getattr(d, "passage_count", "")}</td>'
            "</tr>"
        )
    if not rows:
        return '<p class="docs-empty">No documents are indexed yet. Run <code>assistant index</code>.</p>'
    return (
        '<table class="docs-table"><thead><tr><th>Title</th><th>Publisher</th><th>Year</th>'
        "<th>Language</th><th>Type</th><th>Passages</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


# --- login ----------------------------------------------------------------------------------


def parse_auth(spec: str | None) -> list[tuple[str, str]]:
    """``"user:pass,user2:pass2"`` -> ``[("user", "pass"), ("user2", "pass2")]``; empty -> ``[]``.

    The password is everything after the first colon. Raises ``ValueError`` on an entry
    without a user name or a password.
    """
    pairs = []
    for entry in (spec or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(
                "ASSISTANT_UI_AUTH must be comma-separated user:password pairs; "
                f"entry {user.strip()[:20]!r} has no user name or no password"
            )
        pairs.append((user.strip(), password))
    return pairs


def parse_admins(spec: str | None, accounts: list[tuple[str, str]]) -> set[str]:
    """``ASSISTANT_UI_ADMINS`` (comma-separated user names) as a set; each must be an account of
    ``ASSISTANT_UI_AUTH``, else ``ValueError`` naming the setting (a typo must not pass silently)."""
    names = {n.strip() for n in (spec or "").split(",") if n.strip()}
    unknown = sorted(names - {u for u, _ in accounts})
    if unknown:
        raise ValueError(
            "ASSISTANT_UI_ADMINS names user(s) that are not accounts of ASSISTANT_UI_AUTH: "
            + ", ".join(repr(n[:20]) for n in unknown)
        )
    return names
