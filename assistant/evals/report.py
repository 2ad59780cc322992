"""Reports of an eval run: the terminal table (rich), the JSON report and the HTML report.

The HTML report is a single self-contained file (inline CSS and SVG, no scripts, nothing
fetched), so it opens offline and can be attached to a change.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from assistant.evals import metrics as m

REPORT_VERSION = 1

# (key, short label, is a rate)
COLUMNS: list[tuple[str, str, bool]] = [
    ("hit@1", "hit@1", True),
    ("hit@3", "hit@3", True),
    ("hit@5", "hit@5", True),
    ("hit@10", "hit@10", True),
    ("mrr", "MRR", True),
    ("answer_correct", "correct", True),
    ("lead_correct", "lead", True),
    ("wrong_answers", "wrong", False),
    ("citation_correct", "citation", True),
    ("cited_gold_doc", "gold doc", True),
    ("refusal_accuracy", "refusal", True),
    ("false_refusals", "false ref.", False),
    ("answer_chars_p50", "chars p50", False),
    ("latency_p50_ms", "p50 ms", False),
    ("latency_p95_ms", "p95 ms", False),
]
CHART_METRICS = ["hit@5", "mrr", "answer_correct", "lead_correct", "citation_correct", "refusal_accuracy"]
LOWER_BETTER = {"false_refusals", "false_refusal_rate", "wrong_answers", "wrong_answer_rate", "answer_chars_p50"}
METRIC_LABELS = {k: label for k, label, _ in COLUMNS} | {"answer_correct": "answer correctness",
                                                          "lead_correct": "lead correct",
                                                          "citation_correct": "citation correctness",
                                                          "refusal_accuracy": "refusal accuracy"}


def build_report(rows: list[dict], *, top_k: int, depth: int, sets: list[str], backend: str,
                 duration_s: float, skipped_drafts: int = 0) -> dict:
    return {
        "version": REPORT_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "top_k": top_k,
        "depth": max(depth, top_k),
        "backend": backend,
        "sets": sets,
        "skipped_drafts": skipped_drafts,
        "duration_s": round(duration_s, 1),
        "metrics": m.summarize_groups(rows, max(depth, top_k)),
        "rows": rows,
    }


def write_json(report: dict, reports_dir: Path) -> tuple[Path, Path]:
    """``<reports_dir>/<timestamp>.json`` and ``latest.json``; returns both paths."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = report["created"].replace(":", "").replace("-", "")
    text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    dated = reports_dir / f"{stamp}.json"
    latest = reports_dir / "latest.json"
    dated.write_text(text, encoding="utf-8")
    latest.write_text(text, encoding="utf-8")
    return dated, latest


# --- terminal --------------------------------------------------------------------------


def _fmt(v, rate: bool) -> str:
    if v is None:
        return "–"
    return f"{v * 100:.1f}" if rate else (f"{v:.0f}" if isinstance(v, float) else str(v))


def _cell(key: str, rate: bool, cur: dict, base: dict | None) -> Text:
    v = cur.get(key)
    t = Text(_fmt(v, rate))
    if base is None or v is None or base.get(key) is None or key.startswith("latency"):
        return t
    d = v - base[key]
    if abs(d) < 1e-9:
        return t
    better = d < 0 if key in LOWER_BETTER else d > 0
    t.append(f" {d * 100:+.1f}" if rate else f" {d:+.0f}", style="green" if better else "red")
    return t


TERMINAL_COLUMNS: list[tuple[str, str, bool]] = [
    ("hit@1", "h@1", True),
    ("hit@3", "h@3", True),
    ("hit@5", "h@5", True),
    ("hit@10", "h@10", True),
    ("mrr", "MRR", True),
    ("answer_correct", "correct", True),
    ("lead_correct", "lead", True),
    ("wrong_answers", "wrong", False),
    ("citation_correct", "cite", True),
    ("refusal_accuracy", "refuse", True),
    ("false_refusals", "false ref", False),
    ("answer_chars_p50", "chars", False),
    ("latency_p50_ms", "p50 ms", False),
    ("latency_p95_ms", "p95 ms", False),
]


def results_table(report: dict, baseline: dict | None = None, group: str = "by_kind") -> Table:
    """Overall plus one row per kind (or per document); figures in %, deltas vs the baseline."""
    title = (f"Eval: {report['metrics']['overall']['n']} questions, top_k={report['top_k']}; "
             "rates in % (MRR x100)" + ("; change vs baseline" if baseline else ""))
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False)
    table.add_column({"by_kind": "kind", "by_doc": "document"}.get(group, "kind/question language"), no_wrap=True)
    table.add_column("n", justify="right")
    for _, label, _ in TERMINAL_COLUMNS:
        table.add_column(label, justify="right", no_wrap=True)
    bm = (baseline or {}).get("metrics") or {}
    scopes = [("overall", report["metrics"]["overall"], bm.get("overall"))]
    for name, vals in report["metrics"][group].items():
        scopes.append((name, vals, (bm.get(group) or {}).get(name) if baseline else None))
    for i, (name, cur, base) in enumerate(scopes):
        table.add_row(Text(name, style="bold" if i == 0 else ""), str(cur["n"]),
                      *[_cell(k, rate, cur, base) for k, _, rate in TERMINAL_COLUMNS],
                      end_section=i == 0)
    return table


def print_summary(console: Console, report: dict, baseline: dict | None, gate, by_doc: bool = False) -> None:
    console.print(results_table(report, baseline, "by_kind"))
    if by_doc:
        console.print(results_table(report, baseline, "by_doc"))
        console.print(results_table(report, baseline, "by_kind_lang"))
    o = report["metrics"]["overall"]
    if o["errors"]:
        console.print(f"[red]{o['errors']} question(s) errored[/red] (see the report)")
    if report.get("skipped_drafts"):
        console.print(f"{report['skipped_drafts']} draft case(s) flagged needs_review were skipped")
    failing = [r for r in report["rows"] if not r["passed"]]
    console.print(f"{len(report['rows']) - len(failing)}/{len(report['rows'])} questions pass every check")
    if gate is None:
        return
    for w in gate.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if not gate.failed:
        console.print(f"[green]No regression against the baseline[/green] (tolerance {gate.tolerance:g})")
        return
    console.print(f"[bold red]REGRESSION against the baseline[/bold red] (tolerance {gate.tolerance:g}):")
    for r in gate.metric_regressions:
        console.print(f"  metric {r['scope']} {r['metric']}: {r['baseline']:.4g} -> {r['current']:.4g} ({r['delta']:+.4g})",
                      markup=False, highlight=False)
    for q in gate.question_regressions:
        extra = f" [error: {q['error']}]" if q.get("error") else ""
        console.print(f"  question {q['id']} ({q['kind']}) now fails {', '.join(q['checks'])}: {q['question']}{extra}",
                      markup=False, highlight=False)


# --- HTML ------------------------------------------------------------------------------


def svg_bar_chart(title: str, categories: list[str], series: list[tuple[str, str, list[float | None]]],
                  width: int = 720, height: int = 240) -> str:
    """A grouped vertical bar chart (values 0..1) as inline SVG; None values draw no bar."""
    e = html.escape
    left, right, top, bottom = 40, 10, 28, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(categories), 1)
    group_w = plot_w / n
    bar_w = max(min((group_w * 0.8) / max(len(series), 1), 28), 3)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{e(title)}</text>']
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{int(frac * 100)}%</text>')
    for i, cat in enumerate(categories):
        gx = left + i * group_w + (group_w - bar_w * len(series)) / 2
        for j, (name, color, values) in enumerate(series):
            v = values[i]
            if v is None:
                continue
            h = plot_h * max(0.0, min(1.0, v))
            x = gx + j * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                         f'fill="{color}"><title>{e(cat)} {e(name)}: {v * 100:.1f}%</title></rect>')
            if bar_w >= 14:
                parts.append(f'<text x="{x + (bar_w - 1) / 2:.1f}" y="{top + plot_h - h - 3:.1f}" font-size="8" '
                             f'text-anchor="middle">{v * 100:.0f}</text>')
        cx = left + i * group_w + group_w / 2
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">{e(cat)}</text>')
    lx = left
    for name, color, _ in series:
        parts.append(f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="{height - 9}" font-size="11">{e(name)}</text>')
        lx += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.85rem}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
.bad{color:#b00020}.good{color:#137333}.muted{color:#666}
.fail{border:1px solid #e0b4b4;background:#fff8f8;padding:0.6rem 0.9rem;margin:0.8rem 0;border-radius:4px}
.fail h3{margin:0 0 0.3rem;font-size:1rem}.tag{display:inline-block;background:#b00020;color:#fff;border-radius:3px;padding:0 5px;font-size:0.75rem;margin-left:4px}
.tag.old{background:#888}
pre{white-space:pre-wrap;background:#f6f6f6;padding:0.4rem;margin:0.2rem 0;font-size:0.8rem}
.charts svg{margin:0.3rem 0.6rem 0.6rem 0;border:1px solid #eee}
mark{background:#ffe58f}
"""


def _pct(v) -> str:
    return "–" if v is None else f"{v * 100:.1f}"


def _html_table(report: dict, baseline: dict | None, group: str) -> str:
    e = html.escape
    bm = (baseline or {}).get("metrics") or {}
    head = "".join(f"<th>{e(label)}</th>" for _, label, _ in COLUMNS)
    out = [f"<table><tr><th>{'kind' if group == 'by_kind' else 'document'}</th><th>n</th>{head}</tr>"]
    scopes = [("overall", report["metrics"]["overall"], bm.get("overall"))]
    scopes += [(k, v, (bm.get(group) or {}).get(k)) for k, v in report["metrics"][group].items()]
    for name, cur, base in scopes:
        cells = []
        for key, _, rate in COLUMNS:
            v = cur.get(key)
            txt = _pct(v) if rate else ("–" if v is None else f"{v:g}")
            if base and v is not None and base.get(key) is not None and not key.startswith("latency"):
                d = v - base[key]
                if abs(d) > 1e-9:
                    better = d < 0 if key in LOWER_BETTER else d > 0
                    dtxt = f"{d * 100:+.1f}" if rate else f"{d:+g}"
                    txt += f' <span class="{"good" if better else "bad"}">{dtxt}</span>'
            cells.append(f"<td>{txt}</td>")
        style = ' style="font-weight:bold"' if name == "overall" else ""
        out.append(f"<tr{style}><td>{e(name)}</td><td>{cur['n']}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _page(page) -> str:
    return "" if page is None else f" p.{html.escape(str(page))}"


def _highlight(text: str, evidence: list[str]) -> str:
    """Escape ``text``; mark it whole when it contains evidence (normalised match)."""
    esc = html.escape(text)
    if evidence and m.contains_any(text, evidence):
        return f"<mark>{esc}</mark>"
    return esc


def _failing_html(report: dict, gate) -> str:
    e = html.escape
    regressed = {q["id"]: q["checks"] for q in (gate.question_regressions if gate else [])}
    failing = [r for r in report["rows"] if not r["passed"]]
    failing.sort(key=lambda r: (r["id"] not in regressed, r["kind"], r["id"]))
    if not failing:
        return "<p>Every question passes every check.</p>"
    out = []
    for r in failing:
        failed = [c for c, ok in r["checks"].items() if not ok]
        tags = "".join(
            f'<span class="tag{"" if c in regressed.get(r["id"], []) else " old"}">{e(c)}</span>' for c in failed
        )
        new = " — <b class='bad'>regression</b>" if r["id"] in regressed else ""
        out.append(f'<div class="fail" id="q-{e(r["id"])}"><h3>{e(r["id"])} <span class="muted">({e(r["kind"])}, '
                   f'{e(r.get("lang") or "")})</span> {tags}{new}</h3>')
        out.append(f"<div><b>Q:</b> {e(r['question'])}</div>")
        if r.get("doc_ids"):
            out.append(f"<div class='muted'>gold document(s): {e(', '.join(r['doc_ids']))}"
                       + (f"; evidence first at rank {r['rank']}" if r.get("rank") else "; evidence not retrieved"
                          if r["kind"] != m.UNANSWERABLE else "") + "</div>")
        if r.get("expected"):
            out.append(f"<div><b>Expected:</b> {e(r['expected'])}</div>")
        if r.get("must_include"):
            out.append(f"<div class='muted'>must include: {e(json.dumps(r['must_include'], ensure_ascii=False))}</div>")
        if r.get("error"):
            out.append(f"<div class='bad'><b>Error:</b> {e(r['error'])}</div></div>")
            continue
        out.append(f"<div><b>Got</b> ({'answered' if r.get('answered') else 'refused'}, {r.get('latency_ms')} ms):</div>"
                   f"<pre>{e(r.get('answer') or '')}</pre>")
        ev = r.get("evidence") or []
        if r.get("citations"):
            out.append("<div><b>Citations:</b></div><ul>")
            for c in r["citations"]:
                out.append(f"<li>[{c.get('n')}] {e(str(c.get('document_id')))}{_page(c.get('page'))} "
                           f"<code>{e(str(c.get('passage_id')))}</code>: “{_highlight(c.get('quote') or '', ev)}”</li>")
            out.append("</ul>")
        passages = [p for p in (r.get("passages") or []) + (r.get("cited_passages") or []) if "text" in p]
        if passages:
            cited = {c.get("passage_id") for c in r.get("citations") or []}
            out.append(f"<details><summary>Retrieved passages ({len(passages)})</summary>")
            for p in passages:
                star = " (cited)" if p["id"] in cited else ""
                out.append(f"<div class='muted'>#{p['rank']} {e(p['document_id'])}{_page(p.get('page'))} "
                           f"score {p.get('score')}{star} <code>{e(p['id'])}</code></div>"
                           f"<pre>{_highlight(p.get('text') or '', ev)}</pre>")
            out.append("</details>")
        out.append("</div>")
    return "".join(out)


def render_html(report: dict, baseline: dict | None, gate) -> str:
    e = html.escape
    o = report["metrics"]["overall"]
    bm = (baseline or {}).get("metrics") or {}
    cats = ["overall", *report["metrics"]["by_kind"].keys()]
    charts = []
    for metric in CHART_METRICS:
        cur_vals = [(report["metrics"]["overall"] if c == "overall" else report["metrics"]["by_kind"][c]).get(metric)
                    for c in cats]
        base_vals = [((bm.get("overall") if c == "overall" else (bm.get("by_kind") or {}).get(c)) or {}).get(metric)
                     for c in cats]
        keep = [i for i, (a, b) in enumerate(zip(cur_vals, base_vals)) if a is not None or b is not None]
        if not keep:
            continue
        series = [("this run", "#1f6feb", [cur_vals[i] for i in keep])]
        if baseline:
            series.insert(0, ("baseline", "#b0b7c3", [base_vals[i] for i in keep]))
        width = max(360, 60 + 70 * len(keep))
        charts.append(svg_bar_chart(f"{METRIC_LABELS.get(metric, metric)} by kind", [cats[i] for i in keep], series,
                                    width=width))
    if gate is None:
        verdict = "<p class='muted'>No baseline: report only.</p>"
    elif gate.failed:
        items = "".join(
            f"<li>{e(r['scope'])} {e(r['metric'])}: {r['baseline']:.4g} → {r['current']:.4g} ({r['delta']:+.4g})</li>"
            for r in gate.metric_regressions)
        items += "".join(
            f"<li><a href='#q-{e(q['id'])}'>{e(q['id'])}</a> ({e(q['kind'])}) now fails {e(', '.join(q['checks']))}</li>"
            for q in gate.question_regressions)
        verdict = f"<p class='bad'><b>Regression against the baseline</b> (tolerance {gate.tolerance:g}):</p><ul>{items}</ul>"
    else:
        verdict = f"<p class='good'><b>No regression against the baseline</b> (tolerance {gate.tolerance:g}).</p>"
    warnings = "".join(f"<p class='muted'>warning: {e(w)}</p>" for w in (gate.warnings if gate else []))
    n_fail = sum(1 for r in report["rows"] if not r["passed"])
    base_note = f"baseline of {e(baseline.get('created', '?'))}" if baseline else "no baseline"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eval report {e(report['created'])}</title>
<style>{CSS}</style></head><body>
<h1>Eval report</h1>
<p class="muted">{e(report['created'])} · {o['n']} questions ({o['n_answerable']} answerable, {o['n_unanswerable']} unanswerable)
· top_k {report['top_k']}, retrieval depth {report['depth']} · backend {e(str(report.get('backend')))}
· sets {e(', '.join(report['sets']))} · {base_note} · {report.get('duration_s')} s</p>
{verdict}{warnings}
<h2>By kind</h2>{_html_table(report, baseline, 'by_kind')}
<div class="charts">{''.join(charts)}</div>
<h2>By document</h2>{_html_table(report, baseline, 'by_doc')}
<h2>Failing questions ({n_fail})</h2>
<p class="muted">Checks: <b>retrieved</b> = an evidence string in the top {report['top_k']} passages; <b>correct</b> = answered
and every must_include group present; <b>citation</b> = a cited passage from a gold document containing evidence;
<b>refusal</b> = an unanswerable question refused. Red tags are new since the baseline, grey ones failed already.
Passages containing evidence are <mark>highlighted</mark>.</p>
{_failing_html(report, gate)}
</body></html>
"""


def write_html(report: dict, baseline: dict | None, gate, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, baseline, gate), encoding="utf-8")
    return path
