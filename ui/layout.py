"""The Gradio page: chat + sources panel, filters, feedback, copy, documents tab."""

from __future__ import annotations

import gradio as gr

from assistant.api.workers import QuestionPool
from assistant.service import AssistantService
from assistant.settings import Settings
from ui import formatting as fmt
from ui.gate import UISessions
from ui.handlers import ChatHandlers


# System fonts only: the page must not reach for Google Fonts (the machine is offline).
THEME = gr.themes.Soft(
    primary_hue="blue",
    neutral_hue="slate",
    font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)

CSS = """
.gradio-container { max-width: 1400px !important; }
#app-head h1 { margin: 0 0 2px 0; font-size: 1.45rem; }
#app-head p { margin: 0; color: var(--body-text-color-subdued); }

/* answers */
.answer-ok .answer-body { line-height: 1.55; }
.answer-foot { margin-top: 6px; font-size: .82em; color: var(--body-text-color-subdued); }
.cite-marker { display: inline; border: 1px solid #93c5fd; background: #eff6ff; color: #1d4ed8;
  border-radius: 4px; padding: 0 4px; margin: 0 1px; font-size: .8em; font-weight: 600; cursor: pointer;
  vertical-align: super; line-height: 1.1; }
.cite-marker:hover { background: #dbeafe; }
.answer-refused { border: 1px dashed #b45309; background: #fffbeb; color: #78350f; border-radius: 8px;
  padding: 10px 12px; font-style: normal; }
.answer-refused .refused-title { font-weight: 700; font-size: 1.05em; }
.answer-refused .refused-title::before { content: '\\26A0'; display: inline-block; margin-right: 6px; font-size: .8em; color: #b45309; }
.answer-refused .refused-detail, .answer-refused .refused-closest { margin-top: 4px; font-size: .92em; }
.answer-error { border-left: 4px solid #dc2626; padding: 6px 10px; background: #fef2f2; color: #7f1d1d; }

/* sources */
#sources-box { max-height: 640px; overflow-y: auto; }
.sources-panel .sources-placeholder { color: var(--body-text-color-subdued); padding: 12px; border: 1px dashed var(--border-color-primary);
  border-radius: 8px; }
.sources-head { margin: 4px 0 8px 0; font-size: 1.05rem; }
.closest-note { color: #78350f; background: #fffbeb; border-radius: 6px; padding: 6px 8px; font-size: .9em; }
.source { border: 1px solid var(--border-color-primary); border-radius: 8px; margin: 0 0 8px 0; background: var(--background-fill-primary); }
.source.closest { border-style: dashed; }
.source > summary { cursor: pointer; padding: 8px 10px; list-style: revert; }
.source[open] > summary { border-bottom: 1px solid var(--border-color-primary); }
.source.focused { border-color: #2563eb; box-shadow: 0 0 0 2px #bfdbfe; }
.src-n { font-weight: 700; color: #1d4ed8; }
.closest .src-n { color: #92400e; }
.src-title { font-weight: 600; }
.src-meta { color: var(--body-text-color-subdued); font-size: .88em; margin-left: 4px; }
.src-preview { display: block; margin-top: 3px; font-size: .86em; color: var(--body-text-color-subdued); }
.source .passage { padding: 8px 10px; white-space: pre-wrap; font-size: .9em; line-height: 1.5; max-height: 360px; overflow-y: auto; tab-size: 4; }
.source mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.quote-only { white-space: normal; margin-bottom: 6px; }

/* documents */
.docs-table { width: 100%; border-collapse: collapse; font-size: .93em; }
.docs-table th, .docs-table td { text-align: left; padding: 6px 8px; border: none !important;
  border-bottom: 1px solid var(--border-color-primary) !important; vertical-align: top; }
.docs-table th { background: var(--background-fill-secondary); }
.docs-table td:nth-child(3) { white-space: nowrap; }
.docs-table td.num { text-align: right; }
.docs-table .doc-title { font-weight: 600; }
#feedback-status { min-height: 1.4em; }
"""

# Clicking a citation marker opens that source in the panel (client side: no round trip).
HEAD = """
<script>
(function () {
  function showSource(answerNo, n) {
    var panel = document.getElementById('sources-panel');
    if (!panel) return false;
    panel.querySelectorAll('section.answer-sources').forEach(function (s) {
      s.hidden = s.getAttribute('data-answer') !== String(answerNo);
    });
    var card = document.getElementById('src-' + answerNo + '-' + n);
    if (!card) return false;
    panel.querySelectorAll('.source.focused').forEach(function (e) { e.classList.remove('focused'); });
    card.open = true;
    card.classList.add('focused');
    card.scrollIntoView({block: 'nearest'});
    var mark = card.querySelector('mark');
    var box = card.querySelector('.passage');
    if (mark && box) { box.scrollTop += mark.getBoundingClientRect().top - box.getBoundingClientRect().top - 40; }
    return true;
  }
  window.assistantShowSource = showSource;
  document.addEventListener('click', function (ev) {
    var m = ev.target && ev.target.closest ? ev.target.closest('.cite-marker') : null;
    if (!m) return;
    ev.preventDefault();
    ev.stopPropagation();
    showSource(m.getAttribute('data-answer'), m.getAttribute('data-cite'));
  }, true);
})();
</script>
"""

# The "Manage documents" tab's styles and script (it acts only where its panel is on the page).
from ui.admin import CSS as _ADMIN_CSS, SCRIPT as _ADMIN_SCRIPT  # noqa: E402

CSS += _ADMIN_CSS
HEAD += _ADMIN_SCRIPT

COPY_JS = """
(text) => {
  if (text && navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).catch(() => {});
  }
  return text;
}
"""


def build_blocks(service: AssistantService, settings: Settings, handlers: ChatHandlers | None = None,
                 pool: QuestionPool | None = None, sessions: UISessions | None = None) -> gr.Blocks:
    from ui import admin

    h = handlers or ChatHandlers(service, settings, pool=pool)
    top_k_default = settings.top_k or 5

    with gr.Blocks(title=settings.ui_title, analytics_enabled=False) as demo:
        conv = gr.State([])
        with gr.Row(elem_id="app-head"):
            sign_out = ' <a href="/logout" id="sign-out">Sign out</a>' if settings.ui_auth else ""
            gr.HTML(
                f"<h1>{fmt.esc(settings.ui_title)}</h1><p>Answers only from the indexed documents, with the passage behind every claim. "
                f"Runs offline.{sign_out}</p>"
            )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            elem_id="chat",
                            height=520,
                            sanitize_html=False,
                            render_markdown=True,
                            latex_delimiters=[],
                            feedback_options=("Like", "Dislike"),
                            placeholder="Ask about the Danish and Swedish IOM strategies or the IOM annual reports 2019-2020.",
                            buttons=["copy"],
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                placeholder="Ask a question and press Enter",
                                show_label=False,
                                elem_id="question",
                                scale=8,
                                autofocus=True,
                                max_lines=4,
                            )
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                        gr.Examples(examples=[[q] for q in settings.ui_example_questions], inputs=[question], label="Example questions")
                        with gr.Row():
                            comment = gr.Textbox(
                                label="Comment on an answer (optional)",
                                placeholder="Type a comment, then click thumbs up or down under the answer",
                                elem_id="feedback-comment",
                                scale=4,
                            )
                        feedback_status = gr.Markdown("", elem_id="feedback-status")
                        with gr.Row():
                            copy_btn = gr.Button("Copy answer with sources", elem_id="copy-answer", scale=1)
                            new_chat = gr.Button("New conversation", elem_id="new-chat", scale=1)
                        copy_box = gr.Textbox(
                            label="Answer with sources (to paste into an email)",
                            lines=6,
                            interactive=False,
                            buttons=["copy"],
                            elem_id="copy-text",
                        )
                    with gr.Column(scale=2, min_width=340):
                        with gr.Accordion("Filters", open=False, elem_id="filters"):
                            docs_filter = gr.Dropdown(
                                choices=h.document_choices(), multiselect=True, label="Documents",
                                info="Empty: all documents", elem_id="filter-docs",
                            )
                            with gr.Row():
                                lang_filter = gr.Dropdown(choices=h.language_choices(), value="", label="Language", elem_id="filter-lang")
                                year_filter = gr.Dropdown(choices=h.year_choices(), value="", label="Year", elem_id="filter-year")
                            top_k = gr.Slider(1, 20, value=top_k_default, step=1, label="Passages to use", elem_id="top-k")
                        sources = gr.HTML(fmt.sources_panel([]), elem_id="sources-box", padding=True)
            with gr.Tab("Documents", id="documents"):
                docs_table = gr.HTML(h.documents_html(), elem_id="documents-table", padding=True)
            # Administrators only (ASSISTANT_UI_ADMINS): hidden, and empty, until the page's load event
            # finds an admin session. Its calls go to /ui-admin/..., which refuses everyone else (403).
            with gr.Tab("Manage documents", id="admin", visible=False, elem_id="admin-tab") as admin_tab:
                admin_panel = gr.HTML("", elem_id="admin-box", padding=True)

        # The chat is not an input: the handler rebuilds it from the server-side state (conv).
        ask_inputs = [question, conv, docs_filter, lang_filter, year_filter, top_k]
        ask_outputs = [chatbot, conv, sources, question]
        question.submit(h.respond, ask_inputs, ask_outputs, concurrency_limit=2, concurrency_id="ask")
        send.click(h.respond, ask_inputs, ask_outputs, concurrency_limit=2, concurrency_id="ask")

        def on_like(conv_value: list, comment_value: str, data: gr.LikeData):
            return h.feedback(conv_value, data.index, data.liked, comment_value)

        chatbot.like(on_like, [conv, comment], [feedback_status, comment])
        copy_btn.click(h.copy_latest, [conv], [copy_box]).then(None, [copy_box], None, js=COPY_JS)
        new_chat.click(lambda: ([], [], fmt.sources_panel([]), "", ""), None, [chatbot, conv, sources, copy_box, feedback_status])

        def refresh():
            return (
                h.documents_html(),
                gr.update(choices=h.document_choices()),
                gr.update(choices=h.language_choices()),
                gr.update(choices=h.year_choices()),
            )

        demo.load(refresh, None, [docs_table, docs_filter, lang_filter, year_filter])

        def admin_view(request: gr.Request):
            if admin.is_admin_request(sessions, request):
                return gr.update(visible=True), admin.PANEL_HTML
            return gr.update(visible=False), ""

        demo.load(admin_view, None, [admin_tab, admin_panel])
    return demo


