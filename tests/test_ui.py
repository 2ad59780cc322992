"""The browser UI's formatting and handlers, called directly with the real fixture service.

The end-to-end test in a real browser is tests/test_ui_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.records import Answer, Citation, PassageOut
from ui import formatting as fmt
from ui import mount_ui
from ui.handlers import ChatHandlers

DENMARK_Q = "What did Denmark give IOM unearmarked in 2022?"
REFUSED_Q = "What does Finland's strategy for IOM say about climate change?"

TITLE = "Danish Organisation Strategy for IOM 2023-2026"
PASSAGE = "Annex 2\nDonor\tUnearmarked\nUnearmarked Income\t\t3 508 772\t\t3 508 772\nTotal <b>Denmark</b> & co"


def _answer(answered: bool = True) -> Answer:
    p = PassageOut(id="p1", document_id="dk", title=TITLE, page=14, section="Annex 2", text=PASSAGE, score=0.9)
    p2 = PassageOut(id="p2", document_id="dk", title=TITLE, page=None, section=None, text="Other text", score=0.5)
    if not answered:
        return Answer(answer="The documents do not contain the answer.", answered=False, passages=[p, p2])
    return Answer(
        answer="Denmark gave USD **3,508,772** unearmarked [1]; see also [2] and [7].",
        answered=True,
        citations=[
            Citation(n=1, passage_id="p1", document_id="dk", title=TITLE, page=14, section="Annex 2",
                     quote="Unearmarked Income\t\t3 508 772\t\t3 508 772"),
            Citation(n=2, passage_id="p2", document_id="dk", title=TITLE, quote="Other text"),
        ],
        passages=[p, p2],
    )


# --- pure formatting --------------------------------------------------------------------------


def test_highlight_quote_marks_exact_span_and_escapes_the_rest():
    out = fmt.highlight_quote(PASSAGE, "Unearmarked Income\t\t3 508 772\t\t3 508 772")
    assert out.count("<mark>") == 1
    assert "<mark>Unearmarked Income\t\t3 508 772\t\t3 508 772</mark>" in out
    assert "&lt;b&gt;Denmark&lt;/b&gt; &amp; co" in out  # document text never becomes markup
    assert "<b>" not in out


def test_highlight_quote_tolerates_whitespace_and_case_and_misses_cleanly():
    out = fmt.highlight_quote(PASSAGE, "unearmarked income 3 508 772")
    assert re.search(r"<mark>Unearmarked Income\t\t3 508 772</mark>", out)
    assert fmt.highlight_quote(PASSAGE, "not in the passage at all") == fmt.esc(PASSAGE)
    assert fmt.highlight_quote(PASSAGE, "") == fmt.esc(PASSAGE)


def test_answer_html_links_only_cited_markers():
    html = fmt.answer_html(_answer(), answer_no=3)
    assert 'class="answer-ok"' in html and 'data-state="complete"' in html
    assert html.count('class="cite-marker"') == 2
    assert 'data-answer="3" data-cite="1"' in html and 'data-cite="2"' in html
    assert "[7]" in html and 'data-cite="7"' not in html  # no such citation: stays text
    assert "<strong>3,508,772</strong>" in html
    assert "\n" not in html  # one HTML block for the markdown renderer
    assert fmt.NOT_FOUND_TITLE not in html


def test_answer_html_streaming_prefix():
    ans = _answer()
    pieces = list(fmt.stream_pieces(ans.answer, words_per_piece=2))
    assert len(pieces) > 3
    assert pieces[-1] == ans.answer
    assert all(ans.answer.startswith(p) for p in pieces)
    partial = fmt.answer_html(ans, 0, partial_text=pieces[0])
    assert 'data-state="streaming"' in partial and "answer-foot" not in partial


def test_refused_answer_is_not_styled_as_an_answer():
    ans = _answer(answered=False)
    html = fmt.answer_html(ans)
    assert fmt.NOT_FOUND_TITLE in html
    assert "answer-refused" in html and "answer-ok" not in html and "cite-marker" not in html
    assert "2 closest passages" in html
    panel = fmt.sources_panel([fmt.sources_section(ans, 0)])
    assert "Closest passages" in panel and 'class="answer-sources refused"' in panel
    assert "<mark>" not in panel  # nothing is presented as supporting evidence
    assert panel.count('class="source closest"') == 2


def test_sources_section_highlights_each_cited_quote():
    panel = fmt.sources_panel([fmt.sources_section(_answer(), 0), fmt.sources_section(_answer(), 1)])
    assert panel.count("<section hidden") == 1  # only the latest answer's sources are shown
    assert 'id="src-1-1"' in panel and 'id="src-1-2"' in panel
    assert f"{TITLE}</span> <span class=src-meta>p. 14 \u00b7 Annex 2</span>" in panel
    assert "<mark>Other text</mark>" in panel
    assert "&lt;b&gt;Denmark" in panel


def test_copy_text_is_answer_then_numbered_sources():
    from assistant.render import answer_with_sources

    answer = _answer()
    text = fmt.copy_text(answer)
    assert text == answer_with_sources(answer, markdown=False), "one renderer: the CLI prints the same"
    lines = text.splitlines()
    assert lines[0] == "Denmark gave USD 3,508,772 unearmarked [1]; see also [2] and [7]."
    assert lines[1:3] == ["", "Sources:"] and lines[3].startswith(f"[1] {TITLE} (p. 14, Annex 2) [")
    assert lines[4].startswith(f"[2] {TITLE} [") and len(lines) == 5
    refused = fmt.copy_text(_answer(answered=False))
    assert "Sources:" not in refused


def test_parse_auth():
    assert fmt.parse_auth("") == []
    assert fmt.parse_auth(" alice:s3cret:x , bob:pw,") == [("alice", "s3cret:x"), ("bob", "pw")]
    for bad in ("alice", "alice:", ":pw"):
        with pytest.raises(ValueError, match="user:password"):
            fmt.parse_auth(bad)


# --- handlers with the real service ---------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers(fixture_service):
    return ChatHandlers(fixture_service, fixture_service.settings, stream_delay_s=0)


def _run(handlers, question, conv=None, **kw):
    outs = list(handlers.respond(question, conv or [], **kw))
    return outs


def test_documents_view_and_filter_choices(handlers, fixture_service):
    docs = fixture_service.documents()
    html = handlers.documents_html()
    for d in docs:
        assert fmt.esc(d.title) in html
        assert f'<td class="num">{d.passage_count}</td>' in html
        assert d.passage_count > 0
    assert {v for _, v in handlers.document_choices()} == {d.id for d in docs}
    assert ("Svenska (Swedish)", "sv") in handlers.language_choices()
    years = [v for _, v in handlers.year_choices()]
    assert years[0] == "" and "2022" in years and "2024" in years


def test_chat_streams_an_answer_with_highlighted_sources(handlers):
    outs = _run(handlers, DENMARK_Q)
    first_chat, _, _, box = outs[0]
    assert first_chat == [{"role": "user", "content": fmt.question_html(DENMARK_Q)}] and box == ""  # shown at once
    chat, conv, panel, _ = outs[-1]
    assert [m["role"] for m in chat] == ["user", "assistant"]
    ans = Answer.model_validate(conv[0]["answer"])
    if not ans.answered:
        pytest.fail(f"the fixture corpus answers the Denmark question, got a refusal: {ans.answer}")
    streamed = [o[0][-1]["content"] for o in outs if len(o[0]) == 2]
    assert len(streamed) >= 3 and 'data-state="streaming"' in streamed[0]
    final = chat[-1]["content"]
    assert 'data-state="complete"' in final
    assert final.count('class="cite-marker"') >= len({c.n for c in ans.citations}) >= 1
    for c in ans.citations:
        assert f'id="src-0-{c.n}"' in panel
        assert fmt.esc(c.title) in panel
    # each supporting quote is highlighted inside its passage
    assert panel.count("<mark>") == len(ans.citations)
    assert "Sources" in panel


def test_chat_refused_question_shows_not_found_with_closest_passages(handlers):
    outs = _run(handlers, REFUSED_Q)
    chat, conv, panel, _ = outs[-1]
    ans = conv[0]["answer"]
    if ans["answered"]:
        pytest.fail(f"the fixture corpus has no Finnish strategy; the service answered: {ans['answer']}")
    assert fmt.NOT_FOUND_TITLE in chat[-1]["content"] and "answer-ok" not in chat[-1]["content"]
    assert "Closest passages" in panel and "<mark>" not in panel
    assert panel.count('class="source closest"') == len(ans["passages"]) > 0


def test_follow_up_passes_plain_history_and_keeps_all_sources(handlers):
    chat1, conv1, _, _ = _run(handlers, DENMARK_Q)[-1]
    turns = handlers.history_turns(conv1)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[0].content == DENMARK_Q
    assert turns[1].content == conv1[0]["answer"]["answer"]  # the answer text, not the chat HTML
    chat2, conv2, panel2, _ = _run(handlers, "And which rank did that give Denmark?", conv=conv1)[-1]
    assert len(chat2) == 4 and len(conv2) == 2
    assert panel2.count("<section hidden") == 1 and 'data-answer="1"' in panel2


def test_filters_restrict_the_sources(handlers):
    swedish = "se-2020-2022"
    outs = _run(handlers, "Hur långa är generaldirektörens mandatperioder i IOM?", document_ids=[swedish], top_k=3)
    ans = outs[-1][1][0]["answer"]
    docs = {p["document_id"] for p in ans["passages"]} | {c["document_id"] for c in ans["citations"]}
    assert docs == {swedish}
    assert len(ans["passages"]) <= 3
    f = handlers.build_filters([], "sv", "2021")
    assert f is not None and f.language == "sv" and f.year == 2021 and f.document_ids is None
    assert handlers.build_filters(None, "", "") is None


def test_bad_input_gives_a_message_not_a_trace(handlers):
    outs = _run(handlers, "   ")
    assert outs[-1][0] == []
    long_q = "x" * (handlers.settings.max_question_chars + 1)
    chat, conv, _, box = _run(handlers, long_q)[-1]
    assert "answer-error" in chat[-1]["content"] and "limit is" in chat[-1]["content"]
    assert conv[0]["answer"] is None and box == long_q  # the question stays in the box to shorten it
    assert "Feedback can only be given" in handlers.feedback(conv, 1, True, "")[0]


def test_feedback_goes_to_the_feedback_log(handlers, fixture_service):
    path = fixture_service.settings.feedback_path
    before = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    conv = _run(handlers, DENMARK_Q)[-1][1]
    status, box = handlers.feedback(conv, 1, False, "  wrong figure  ")
    assert "saved" in status and box == ""
    assert handlers.feedback(conv, 0, True, "")[0] == "Feedback can only be given on an answer."
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(before) + 1
    rec = json.loads(lines[-1])
    assert rec["rating"] == "down" and rec["comment"] == "wrong figure" and rec["question"] == DENMARK_Q
    assert rec["answer"] == conv[0]["answer"]["answer"]


def test_copy_latest_uses_the_last_answer(handlers):
    conv = _run(handlers, DENMARK_Q)[-1][1]
    ans = Answer.model_validate(conv[0]["answer"])
    text = handlers.copy_latest(conv)
    assert text == fmt.copy_text(ans)
    for c in ans.citations:
        assert f"[{c.n}] {c.title}" in text
    assert handlers.copy_latest([]) == ""


# --- mounting and login -----------------------------------------------------------------------------


def test_mount_ui_serves_the_page_next_to_api_routes(fixture_service):
    app = FastAPI()

    @app.get("/v1/ping")
    def ping():
        return {"ok": True}

    mount_ui(app, fixture_service, fixture_service.settings)
    with TestClient(app) as client:
        assert client.get("/v1/ping").json() == {"ok": True}
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        config = client.get("/config")
        assert config.status_code == 200
        assert "What did Denmark give IOM unearmarked in 2022?" in config.text  # example questions


def test_ui_auth_requires_login(fixture_service):
    settings = fixture_service.settings.model_copy(update={"ui_auth": "alice:s3cret,bob:pw"})
    app = mount_ui(FastAPI(), fixture_service, settings)
    with TestClient(app) as client:
        assert client.get("/config").status_code == 401
        page = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert "<form" in client.get("/login").text
        assert client.post("/login", data={"username": "alice", "password": "nope"}).status_code == 401
        ok = client.post("/login", data={"username": "alice", "password": "s3cret"}, follow_redirects=False)
        assert ok.status_code == 303 and "HttpOnly" in ok.headers["set-cookie"]
        assert client.get("/config").status_code == 200
        client.get("/logout")
        assert client.get("/config").status_code == 401


def test_bad_ui_auth_is_a_clear_error(fixture_service):
    settings = fixture_service.settings.model_copy(update={"ui_auth": "alice"})
    with pytest.raises(ValueError, match="ASSISTANT_UI_AUTH"):
        mount_ui(FastAPI(), fixture_service, settings)
