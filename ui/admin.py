"""The UI's "Manage documents" tab: an administrator lists, adds and removes documents in the browser.

Who is an administrator: a UI account (``ASSISTANT_UI_AUTH``) named in ``ASSISTANT_UI_ADMINS``, and
only while ``ASSISTANT_ADMIN_KEY`` is set (without it the API's admin endpoints are off too). The role
is not in the session cookie: it is looked up on every request, so an open session of a user removed
from the list (and the server restarted) loses it at once.

The tab does not use Gradio's upload route (the gate keeps answering 404 there). Its page script calls
the routes below with the session cookie (``SameSite=Strict``), from the page's own origin (the gate
refuses other origins) and with the session's CSRF token in ``X-Assistant-CSRF``. Each route is the API's
own endpoint function (``assistant.api.uploads``, ``assistant.api.documents``), so an upload through the
UI has the API's limits (``ASSISTANT_MAX_UPLOAD_BYTES``), content checks, errors and background
re-index job; a failed job leaves the previous index serving, as with ``POST /v1/documents``.

| UI route | same as |
|---|---|
| ``GET /ui-admin/session`` | (the signed-in admin and the CSRF token) |
| ``GET /ui-admin/documents`` | ``GET /v1/documents`` |
| ``POST /ui-admin/documents`` | ``POST /v1/documents`` |
| ``DELETE /ui-admin/documents/{id}`` | ``DELETE /v1/documents/{id}`` |
| ``GET /ui-admin/index/status`` | ``GET /v1/index/status`` |

The gate (``ui.gate``) refuses non-admins (403 ``admin_required``) before the body is read; the
dependency below checks again, so the routes are safe even without the gate in front.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request

from assistant.api import documents, uploads
from assistant.api.errors import ApiError
from assistant.api.models import DocumentList
from ui.gate import ADMIN_PREFIX, COOKIE, CSRF_HEADER, UISessions

log = logging.getLogger("ui.admin")

UPLOAD_PATH = ADMIN_PREFIX + "/documents"


def sessions_of(request: Request) -> UISessions:
    sessions = getattr(request.app.state, "ui_sessions", None)
    if sessions is None:
        raise ApiError(403, "admin_disabled", "Managing documents in the UI is off.")
    return sessions


async def require_ui_admin(request: Request) -> str:
    """The signed-in administrator's user name; else 401/403 as the gate answers."""
    sessions = sessions_of(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    refusal = sessions.admin_refusal(headers, request.method.upper())
    if refusal is not None:
        raise ApiError(*refusal)
    user = sessions.user(request.cookies.get(COOKIE)) or ""
    if request.method.upper() not in ("GET", "HEAD"):
        log.info("UI admin %s: %s %s", user, request.method, request.url.path)
    return user


router = APIRouter(prefix=ADMIN_PREFIX, include_in_schema=False, dependencies=[Depends(require_ui_admin)])
router.add_api_route("/documents", documents.list_documents, methods=["GET"], response_model=DocumentList)
router.add_api_route("/documents", uploads.upload_document, methods=["POST"], status_code=202,
                     response_model=uploads.JobAccepted)
router.add_api_route("/documents/{document_id}", uploads.delete_document, methods=["DELETE"], status_code=202,
                     response_model=uploads.JobAccepted)
router.add_api_route("/index/status", uploads.index_status, methods=["GET"], response_model=uploads.IndexStatus)


@router.get("/session")
async def session(request: Request, user: str = Depends(require_ui_admin)) -> dict[str, Any]:
    sessions = sessions_of(request)
    cookie = request.cookies.get(COOKIE) or ""
    return {"user": user, "admin": True, "csrf": sessions.csrf_token(cookie), "csrf_header": CSRF_HEADER,
            "max_upload_bytes": int(request.app.state.settings.max_upload_bytes)}


def is_admin_request(sessions: UISessions | None, request: Any) -> bool:
    """For the page's handlers: does this Gradio request come from an administrator's session?"""
    if sessions is None or request is None:
        return False
    try:
        cookies = dict(getattr(request, "cookies", {}) or {})
    except Exception:
        return False
    return sessions.is_admin(sessions.user(cookies.get(COOKIE)))


# --- the tab's HTML and script ---------------------------------------------------------------------

ACCEPT = ",".join(sorted(uploads.KIND_OF_SUFFIX))

PANEL_HTML = f"""
<div id="admin-panel" class="admin-panel">
  <h3>Indexed documents</h3>
  <div id="admin-docs" class="admin-docs"><p class="admin-muted">Loading…</p></div>
  <h3>Last index job</h3>
  <div id="admin-status" class="admin-status" aria-live="polite"><p class="admin-muted">Loading…</p></div>
  <h3>Add a document</h3>
  <form id="admin-upload" class="admin-upload">
    <label>File (PDF, Word, HTML or text) <input type="file" name="file" id="admin-file" accept="{ACCEPT}" required></label>
    <div class="admin-fields">
      <label>Id <input name="id" id="admin-id" placeholder="from the file name" maxlength="80"></label>
      <label>Title <input name="title" id="admin-title" maxlength="300"></label>
      <label>Publisher <input name="publisher" id="admin-publisher" maxlength="300"></label>
      <label>Language <select name="language" id="admin-language"><option value="en">English</option>
        <option value="sv">Swedish</option></select></label>
      <label>Year <input name="year" id="admin-year" inputmode="numeric" maxlength="4"></label>
      <label>Period <input name="period" id="admin-period" placeholder="e.g. 2023-2026" maxlength="40"></label>
      <label>Type <input name="doc_type" id="admin-doc-type" placeholder="strategy, annual_report, ..." maxlength="40"></label>
      <label>Aliases <input name="aliases" id="admin-aliases" placeholder="comma-separated" maxlength="2000"></label>
    </div>
    <button type="submit" id="admin-submit">Upload and index</button>
    <span id="admin-message" class="admin-message" role="status"></span>
  </form>
</div>
"""

CSS = """
.admin-panel h3 { margin: 14px 0 6px 0; font-size: 1.02rem; }
.admin-muted { color: var(--body-text-color-subdued); }
.admin-fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 8px 14px; margin: 8px 0; }
.admin-upload label { display: flex; flex-direction: column; font-size: .9em; gap: 3px; }
.admin-upload input, .admin-upload select { padding: 5px 7px; border: 1px solid var(--border-color-primary); border-radius: 6px; }
.admin-upload button, .admin-docs button { padding: 6px 12px; border-radius: 6px; border: 1px solid #2563eb; background: #2563eb;
  color: #fff; cursor: pointer; }
.admin-docs button { background: #fff; color: #b91c1c; border-color: #fca5a5; padding: 2px 8px; }
.admin-docs td:nth-child(4), .admin-docs td:nth-child(6) { white-space: nowrap; }
.admin-message { margin-left: 10px; }
.admin-message.error, .admin-status .error { color: #b91c1c; }
.admin-status .job-state-succeeded { color: #15803d; font-weight: 600; }
.admin-status .job-state-failed { color: #b91c1c; font-weight: 600; }
"""

# Plain DOM code (no framework): everything the server sends is put in with textContent, never as HTML.
SCRIPT = """
<script>
(function () {
  var PREFIX = '/ui-admin';
  var csrf = null, polling = null;
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function token() {
    if (csrf) return Promise.resolve(csrf);
    return fetch(PREFIX + '/session', {credentials: 'same-origin'}).then(function (r) { return r.json(); })
      .then(function (j) { csrf = j.csrf || ''; return csrf; });
  }
  function call(method, path, body) {
    var t = method === 'GET' ? Promise.resolve(null) : token();
    return t.then(function (tok) {
      var headers = tok ? {'X-Assistant-CSRF': tok} : {};
      return fetch(PREFIX + path, {method: method, body: body, headers: headers, credentials: 'same-origin'});
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return {status: r.status, body: j}; });
    });
  }
  function errorText(res) {
    var e = res.body && res.body.error;
    return (e ? e.message : 'HTTP ' + res.status) + ' (' + res.status + ')';
  }
  function renderDocs(res) {
    var box = document.getElementById('admin-docs'); if (!box) return;
    box.textContent = '';
    if (res.status !== 200) { box.appendChild(el('p', errorText(res), 'error')); return; }
    var docs = res.body.documents || [];
    if (!docs.length) { box.appendChild(el('p', 'No documents are indexed.', 'admin-muted')); return; }
    var table = el('table', null, 'docs-table'); var head = el('tr');
    ['Title', 'Publisher', 'Language', 'Period', 'Passages', 'Id', ''].forEach(function (h) { head.appendChild(el('th', h)); });
    var thead = el('thead'); thead.appendChild(head); table.appendChild(thead);
    var tbody = el('tbody');
    docs.forEach(function (d) {
      var tr = el('tr'); tr.setAttribute('data-doc', d.id);
      tr.appendChild(el('td', d.title, 'doc-title')); tr.appendChild(el('td', d.publisher));
      tr.appendChild(el('td', d.language)); tr.appendChild(el('td', d.period || d.year || ''));
      tr.appendChild(el('td', d.passage_count, 'num')); tr.appendChild(el('td', d.id));
      var td = el('td'); var b = el('button', 'Remove'); b.type = 'button'; b.setAttribute('data-remove', d.id);
      td.appendChild(b); tr.appendChild(td); tbody.appendChild(tr);
    });
    table.appendChild(tbody); box.appendChild(table);
  }
  function renderStatus(res) {
    var box = document.getElementById('admin-status'); if (!box) return false;
    box.textContent = '';
    if (res.status !== 200) { box.appendChild(el('p', errorText(res), 'error')); return false; }
    var st = res.body, idx = st.index || {};
    box.appendChild(el('p', 'Serving build ' + (idx.build || '?') + ': ' + (idx.documents || 0) + ' documents, ' +
      (idx.passages || 0) + ' passages.', 'admin-muted'));
    var job = (st.jobs || [])[0];
    if (!job) { box.appendChild(el('p', 'No upload or removal since the server started.', 'admin-muted')); return false; }
    var p = el('p'); p.setAttribute('data-job', job.id); p.setAttribute('data-state', job.state);
    p.appendChild(el('span', (job.action === 'add' ? 'Add ' : 'Remove ') + job.file + ': '));
    p.appendChild(el('span', job.state, 'job-state-' + job.state));
    var detail = ' (' + job.phase;
    if (job.documents_total) detail += ', documents ' + job.documents_done + '/' + job.documents_total;
    if (job.passages_total) detail += ', passages embedded ' + job.passages_embedded + '/' + job.passages_total;
    if (job.document_passages) detail += ', ' + job.document_passages + ' passages in this document';
    p.appendChild(el('span', detail + ')'));
    box.appendChild(p);
    if (job.message) box.appendChild(el('p', job.message, job.state === 'failed' ? 'error' : 'admin-muted'));
    (job.errors || []).forEach(function (e) { box.appendChild(el('p', e.file + ': ' + e.error, 'error')); });
    return st.state !== 'idle';
  }
  function refresh() {
    return Promise.all([call('GET', '/documents'), call('GET', '/index/status')]).then(function (r) {
      renderDocs(r[0]);
      var busy = renderStatus(r[1]);
      clearTimeout(polling);
      if (busy) polling = setTimeout(refresh, 600);
    });
  }
  function say(text, isError) {
    var m = document.getElementById('admin-message'); if (!m) return;
    m.textContent = text; m.className = 'admin-message' + (isError ? ' error' : '');
  }
  window.assistantAdminRefresh = refresh;
  document.addEventListener('submit', function (ev) {
    // getAttribute: the form's "id" field shadows form.id
    var form = ev.target; if (!form || !form.getAttribute || form.getAttribute('id') !== 'admin-upload') return;
    ev.preventDefault();
    var data = new FormData(form);
    say('Uploading…', false);
    call('POST', '/documents', data).then(function (res) {
      if (res.status === 202) { say('Accepted: ' + res.body.document.file + ' is being indexed.', false); form.reset(); }
      else say(errorText(res), true);
      return refresh();
    }).catch(function (e) { say('Upload failed: ' + e, true); });
  }, true);
  document.addEventListener('click', function (ev) {
    var b = ev.target && ev.target.closest ? ev.target.closest('button[data-remove]') : null;
    if (!b) return;
    ev.preventDefault();
    var id = b.getAttribute('data-remove');
    if (!window.confirm('Remove ' + id + ' from the index? The file goes to corpus/.trash/.')) return;
    call('DELETE', '/documents/' + encodeURIComponent(id)).then(function (res) {
      say(res.status === 202 ? 'Removing ' + id + '…' : errorText(res), res.status !== 202);
      return refresh();
    });
  }, true);
  new MutationObserver(function () {
    var box = document.getElementById('admin-docs');
    if (box && !box.hasAttribute('data-ready')) { box.setAttribute('data-ready', '1'); refresh(); }
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>
"""
