"""End to end: the real server on loopback, driven in headless Chromium (Debian's) by Playwright.

Needs /usr/bin/chromium (`make browser` installs it) and the playwright package (dev extra).
Playwright's own browser download is never used. Screenshots go to test-output/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from assistant.settings import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("ASSISTANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]
OUT = ROOT / "test-output"

DENMARK_Q = "What did Denmark give IOM unearmarked in 2022?"
REFUSED_Q = "What was IOM's total revenue in 2021?"
ANSWER_TIMEOUT_MS = 120_000

# Records, in the page, the time from the Enter key in the question box to the first answer text.
TIMING_JS = """
() => {
  window.__enterAt = null; window.__firstTokenAt = null;
  const box = document.querySelector('#question textarea');
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && window.__enterAt === null) window.__enterAt = performance.now();
  }, true);
  const obs = new MutationObserver(() => {
    if (window.__enterAt === null || window.__firstTokenAt !== null) return;
    const body = document.querySelector('#chat .answer-body, #chat .answer-refused');
    if (body && body.textContent.trim().length > 0) { window.__firstTokenAt = performance.now(); obs.disconnect(); }
  });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def _requirements():
    from conftest import skip_or_fail

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"playwright is not importable ({exc}); install the dev extra")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        skip_or_fail(f"{CHROMIUM} is missing; `make browser` installs Debian's chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build_app(service):
    """The lead's server composition when it exists (API + UI), else a bare FastAPI app with the UI."""
    settings = service.settings
    try:
        from assistant.server import build_app
    except ImportError:
        build_app = None
    if build_app is not None:
        return build_app(settings, service=service)
    from fastapi import FastAPI

    from ui import mount_ui

    return mount_ui(FastAPI(), service, settings)


@pytest.fixture(scope="module")
def server_url(full_service):
    _requirements()
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(_build_app(full_service), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = ctx.new_page()
        external: list[str] = []
        pg.on("request", lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
        pg.external_requests = external
        pg.goto(server_url)
        pg.wait_for_selector("#question textarea", timeout=30_000)
        yield pg
        ctx.close()
        browser.close()


def _ask(page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


def _shot(page, name: str) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_denmark_question_answer_sources_and_highlight(page, full_service, capsys):
    # Example questions on first load (is_visible does not wait; the page may still be rendering).
    page.get_by_text(DENMARK_Q).first.wait_for(state="visible", timeout=30_000)
    page.evaluate(TIMING_JS)
    _ask(page, DENMARK_Q)
    page.wait_for_selector("#chat .answer-ok[data-state=complete], #chat .answer-refused", timeout=ANSWER_TIMEOUT_MS)
    enter_to_first = page.evaluate("window.__firstTokenAt - window.__enterAt")
    with capsys.disabled():
        print(f"\n[ui] Enter to first answer token in the browser: {enter_to_first:.0f} ms")

    chat_text = page.locator("#chat").inner_text()
    assert page.locator("#chat .answer-refused").count() == 0, f"the Denmark question was refused: {chat_text[-600:]}"
    assert "3,508,772" in chat_text or "3 508 772" in chat_text, chat_text[-800:]

    panel = page.locator("#sources-panel")
    titles = {d.title for d in full_service.documents()}
    panel_text = panel.inner_text()
    assert any(t in panel_text for t in titles), panel_text[:500]

    marker = page.locator("#chat .cite-marker").first
    n = marker.get_attribute("data-cite")
    answer_no = marker.get_attribute("data-answer")
    card = page.locator(f"#src-{answer_no}-{n}")
    assert not card.locator("mark").is_visible()  # closed until asked for
    marker.click()
    card.locator("mark").first.wait_for(state="visible", timeout=5_000)
    assert card.get_attribute("open") is not None
    assert card.locator("mark").first.inner_text().strip()

    # thumbs up with a comment -> the feedback log
    path = full_service.settings.feedback_path
    before = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0
    page.locator("#feedback-comment textarea").fill("clear answer")
    page.locator("#chat button[aria-label='Like']").last.click()
    page.get_by_text("on this answer was saved").wait_for(timeout=10_000)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == before + 1
    rec = json.loads(lines[-1])
    assert rec["rating"] == "up" and rec["comment"] == "clear answer" and rec["question"] == DENMARK_Q

    # copy answer with sources
    page.locator("#copy-answer").click()
    copy_box = page.locator("#copy-text textarea")
    page.wait_for_function("() => document.querySelector('#copy-text textarea').value.includes('Sources:')", timeout=10_000)
    copied = copy_box.input_value()
    assert "3,508,772" in copied or "3 508 772" in copied
    assert f"[{n}] " in copied.split("Sources:")[1]
    _shot(page, "ui-answer.png")  # answer, opened source with the quote highlighted, copy text


def test_refused_question_shows_not_found(page):
    _ask(page, REFUSED_Q)
    refused = page.locator("#chat .answer-refused").last
    try:
        refused.wait_for(timeout=ANSWER_TIMEOUT_MS)
    except Exception:
        pytest.fail("no not-found state for the 2021 revenue question: " + page.locator("#chat").inner_text()[-600:])
    assert "Not found in the documents" in refused.inner_text()
    visible = page.locator("#sources-panel section.answer-sources:not([hidden])")
    assert "Closest passages" in visible.inner_text()
    assert visible.locator(".source.closest").count() >= 1
    assert visible.locator("mark").count() == 0
    _shot(page, "ui-refused.png")


def test_documents_tab_and_offline_page(page, full_service):
    page.get_by_role("tab", name="Documents").click()
    table = page.locator("#documents-table table")
    table.wait_for(timeout=10_000)
    text = table.inner_text()
    for d in full_service.documents():
        assert d.title in text
    _shot(page, "ui-documents.png")
    assert page.external_requests == [], page.external_requests  # nothing leaves the machine
