"""The admin-only "Manage documents" tab in headless Chromium (Debian's, through Playwright), against
``build_app`` (API + UI behind the gate) on real uvicorn, with its own copy of the fixture corpus.

An administrator signs in, uploads a generated PDF with its catalog fields, watches the job finish,
sees the document listed with its passage count, asks the chat a question only it answers, removes it
and gets the not-found state again. A signed-in non-admin sees no such tab, and the same calls made
from their page are refused (403).
"""

from __future__ import annotations

import pytest

from _pdf import zembla_pdf
from assistant.server import build_app
from conftest import _built, _loaded, fixture_corpus
from test_gate_live import LiveServer
from test_ui_admin import ADMIN, ADMIN_PW, QUESTION, USER, USER_PW, admin_settings
from test_ui_browser import CHROMIUM, CHROMIUM_ARGS, _requirements, _shot

pytestmark = [pytest.mark.browser]

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _requirements()
    pytest.importorskip("reportlab", reason="the dev extra (reportlab) is not installed")
    tmp = tmp_path_factory.mktemp("ui-admin-browser")
    settings = admin_settings(_built(tmp, fixture_corpus(tmp / "corpus")))
    with LiveServer(build_app(settings, service=_loaded(settings))) as live:
        live.pdf = tmp / "Zembla review 2031.pdf"
        live.pdf.write_bytes(zembla_pdf())
        yield live


@pytest.fixture(scope="module")
def browser():
    _requirements()  # skip (or fail, when every test must run) without chromium, as the UI browser tests do
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _page(browser, server, user: str, password: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(server.base + "/")
    page.wait_for_selector("#username", timeout=30_000)
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#question textarea", timeout=30_000)
    return ctx, page


def _ask(page, question: str):
    before = page.locator("#chat .answer-ok[data-state=complete], #chat .answer-refused").count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#chat .answer-ok[data-state=complete], #chat .answer-refused').length > n",
        arg=before, timeout=TIMEOUT_MS)
    return page.locator("#chat .answer-ok[data-state=complete], #chat .answer-refused").last


def _wait_job(page, state: str = "succeeded", action: str = "Add"):
    """Wait until the status shows the job of ``action`` ("Add", "Remove") finished, and check how.
    The previous job stays shown until the status is next polled, so the action is matched too, and
    the state is read in the same look at the page."""
    finished = page.wait_for_function(
        "(a) => { const p = document.querySelector('#admin-status p[data-state]');"
        " return p && p.textContent.startsWith(a + ' ') && ['succeeded', 'failed'].includes(p.dataset.state)"
        " && p.dataset.state; }", arg=action, timeout=TIMEOUT_MS)
    assert finished.json_value() == state, page.locator("#admin-status").inner_text()


def test_admin_uploads_sees_asks_and_removes(browser, server):
    ctx, page = _page(browser, server, ADMIN, ADMIN_PW)
    try:
        page.on("dialog", lambda d: d.accept())  # the removal asks for confirmation
        page.get_by_role("tab", name="Manage documents").click()
        page.wait_for_selector("#admin-docs table", timeout=30_000)
        assert "Danish Organisation Strategy" in page.locator("#admin-docs").inner_text()
        assert page.locator("#admin-docs tr[data-doc=zembla-2031]").count() == 0

        page.set_input_files("#admin-file", str(server.pdf))
        page.fill("#admin-id", "zembla-2031")
        page.fill("#admin-title", "Zemblan Partnership Review with IOM 2031")
        page.fill("#admin-publisher", "Principality of Zembla")
        page.fill("#admin-year", "2031")
        page.fill("#admin-period", "2029-2031")
        page.click("#admin-submit")
        page.get_by_text("is being indexed").wait_for(timeout=30_000)
        _wait_job(page)
        row = page.locator("#admin-docs tr[data-doc=zembla-2031]")
        row.wait_for(timeout=30_000)
        cells = row.locator("td").all_inner_texts()
        assert cells[:4] == ["Zemblan Partnership Review with IOM 2031", "Principality of Zembla", "en", "2029-2031"]
        assert int(cells[4]) >= 1
        assert "passages in this document" in page.locator("#admin-status").inner_text()
        _shot(page, "ui-admin-documents.png")

        page.get_by_role("tab", name="Chat").click()
        answer = _ask(page, QUESTION)
        text = answer.inner_text()
        assert "4,321,987" in text, text
        assert "Zemblan Partnership Review" in page.locator("#sources-panel").inner_text()

        page.get_by_role("tab", name="Manage documents").click()
        row.locator("button[data-remove]").click()
        page.get_by_text("Removing zembla-2031").wait_for(timeout=30_000)
        _wait_job(page, action="Remove")
        page.wait_for_function("() => !document.querySelector('#admin-docs tr[data-doc=zembla-2031]')",
                               timeout=TIMEOUT_MS)

        page.get_by_role("tab", name="Chat").click()
        refused = _ask(page, QUESTION)
        assert "Not found in the documents" in refused.inner_text()
    finally:
        ctx.close()


def test_a_failed_upload_shows_the_loader_error(browser, server, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n not really a PDF \n%%EOF")
    ctx, page = _page(browser, server, ADMIN, ADMIN_PW)
    try:
        page.get_by_role("tab", name="Manage documents").click()
        page.wait_for_selector("#admin-docs table", timeout=30_000)
        page.set_input_files("#admin-file", str(broken))
        page.click("#admin-submit")
        _wait_job(page, "failed")
        status = page.locator("#admin-status").inner_text()
        assert "broken.pdf" in status and "failed" in status
        exe = tmp_path / "tool.exe"
        exe.write_bytes(b"MZ\x90\x00")
        page.set_input_files("#admin-file", str(exe))
        page.click("#admin-submit")
        page.wait_for_selector("#admin-message.error", timeout=30_000)
        assert "Unsupported file type .exe" in page.locator("#admin-message").inner_text()
    finally:
        ctx.close()


def test_a_non_admin_sees_no_admin_tab_and_is_refused(browser, server):
    ctx, page = _page(browser, server, USER, USER_PW)
    try:
        page.get_by_role("tab", name="Documents").wait_for(timeout=30_000)
        assert page.get_by_role("tab", name="Manage documents").count() == 0
        assert page.locator("#admin-panel").count() == 0
        statuses = page.evaluate("""async () => {
            const out = [];
            for (const [m, p] of [['GET', '/ui-admin/documents'], ['GET', '/ui-admin/session'],
                                  ['DELETE', '/ui-admin/documents/dk-2023-2026']]) {
                const r = await fetch(p, {method: m, credentials: 'same-origin'});
                out.push([r.status, (await r.json()).error.code]);
            }
            const fd = new FormData(); fd.append('file', new Blob(['hello']), 'x.txt');
            const r = await fetch('/ui-admin/documents', {method: 'POST', body: fd, credentials: 'same-origin'});
            out.push([r.status, (await r.json()).error.code]);
            return out;
        }""")
        assert statuses == [[403, "admin_required"]] * 4, statuses
    finally:
        ctx.close()
