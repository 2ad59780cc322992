"""``assistant eval``: run the known questions, report, and gate on the baseline.

``assistant eval`` with no subcommand runs the eval (exit 0: no regression or no baseline;
1: regression against the baseline; 2: the eval could not run). ``assistant eval
add-from-feedback`` turns thumbs-down feedback into draft cases.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from assistant.settings import get_settings

eval_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    no_args_is_help=False,
    help="Run the golden questions through the assistant, report, and fail on regressions.",
)

EXIT_OK, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2


@dataclass
class EvalOutcome:
    exit_code: int
    report: dict | None = None
    gate: object | None = None
    paths: dict | None = None


def make_console() -> Console:
    """Stdout console; wide enough for the table when output is not a terminal (CI logs)."""
    c = Console()
    return c if c.is_terminal else Console(width=180)


def _display_path(p: Path) -> str:
    """Relative to the project root when inside it (reports and baseline are committed)."""
    from assistant.settings import ROOT

    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def default_sets(evals_dir: Path) -> list[Path]:
    sets = [evals_dir / "golden.jsonl"]
    if (evals_dir / "user.jsonl").exists():
        sets.append(evals_dir / "user.jsonl")
    return sets


def run_eval(
    asker,
    set_paths: list[Path],
    *,
    catalog_path: Path,
    top_k: int = 5,
    depth: int = 10,
    baseline_path: Path | None = None,
    update_baseline: bool = False,
    tolerance: float = 0.02,
    html: bool = False,
    reports_dir: Path | None = None,
    backend: str = "in-process",
    console: Console | None = None,
    by_doc: bool = False,
    progress: bool = True,
) -> EvalOutcome:
    """What ``assistant eval`` does once it has a backend: load cases, run, report, gate."""
    from assistant.evals import baseline as bl
    from assistant.evals import report as rp
    from assistant.evals.cases import CaseError, catalog_doc_ids, catalog_doc_texts, load_cases
    from assistant.evals.runner import AskError

    console = console or make_console()
    try:
        doc_ids = catalog_doc_ids(catalog_path)
        cases = load_cases(list(set_paths), doc_ids)
        baseline = bl.load_baseline(baseline_path) if baseline_path else None
    except (CaseError, bl.BaselineError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        return EvalOutcome(EXIT_ERROR)
    drafts = [c for c in cases if c.needs_review]
    cases = [c for c in cases if not c.needs_review]
    if not cases:
        console.print("[red]error:[/red] no runnable cases in " + ", ".join(map(str, set_paths)), highlight=False)
        return EvalOutcome(EXIT_ERROR)

    t0 = time.perf_counter()
    try:
        rows = _run_with_progress(console, cases, asker, doc_ids, top_k, depth, progress,
                                  catalog_doc_texts(catalog_path))
    except AskError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        return EvalOutcome(EXIT_ERROR)
    report = rp.build_report(rows, top_k=top_k, depth=depth, sets=[_display_path(p) for p in set_paths], backend=backend,
                             duration_s=time.perf_counter() - t0, skipped_drafts=len(drafts))

    gate = bl.compare(report, baseline, tolerance) if baseline else None
    report["gate"] = gate.to_dict() if gate else None
    rp.print_summary(console, report, baseline, gate, by_doc=by_doc)

    paths: dict = {}
    if reports_dir is not None:
        dated, latest = rp.write_json(report, reports_dir)
        paths.update(json=str(dated), latest=str(latest))
        if html:
            paths["html"] = str(rp.write_html(report, baseline, gate, Path(reports_dir) / "latest.html"))
        console.print("reports: " + ", ".join(paths.values()), highlight=False)

    errors = report["metrics"]["overall"]["errors"]
    if errors == len(rows):
        first = next(r["error"] for r in rows if r.get("error"))
        console.print(f"[red]error:[/red] every question failed; first error: {first}", highlight=False)
        return EvalOutcome(EXIT_ERROR, report, gate, paths)
    if update_baseline:
        if baseline_path is None:
            console.print("[red]error:[/red] --update-baseline needs a baseline path")
            return EvalOutcome(EXIT_ERROR, report, gate, paths)
        if errors:
            console.print(f"[red]error:[/red] {errors} question(s) errored; not accepting this state as the baseline")
            return EvalOutcome(EXIT_ERROR, report, gate, paths)
        bl.write_baseline(baseline_path, report)
        if gate is not None and gate.failed:
            console.print("[yellow]--update-baseline: the changes listed above are accepted[/yellow]")
        console.print(f"[green]baseline written:[/green] {baseline_path}", highlight=False)
        return EvalOutcome(EXIT_OK, report, gate, paths)
    if gate is None:
        console.print(f"no baseline at {baseline_path}: report only (write one with --update-baseline)",
                      highlight=False)
        return EvalOutcome(EXIT_OK, report, gate, paths)
    return EvalOutcome(EXIT_REGRESSION if gate.failed else EXIT_OK, report, gate, paths)


def _run_with_progress(console: Console, cases, asker, doc_ids, top_k: int, depth: int, progress: bool,
                       doc_texts: dict[str, str]) -> list[dict]:
    from assistant.evals.runner import run_cases

    if not progress:
        return run_cases(cases, asker, doc_ids, top_k=top_k, depth=depth, doc_texts=doc_texts)
    with Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[last]}"),
                  console=console, transient=False) as bar:
        task = bar.add_task("eval", total=len(cases), last="")

        def tick(row: dict) -> None:
            bar.update(task, advance=1, last=f"{row['id']} {'ok' if row['passed'] else 'FAIL'}")

        return run_cases(cases, asker, doc_ids, top_k=top_k, depth=depth, on_result=tick, doc_texts=doc_texts)


def _check_inputs(console: Console, set_paths: list[Path], catalog_path: Path, baseline_path: Path) -> None:
    from assistant.evals.baseline import BaselineError, load_baseline
    from assistant.evals.cases import CaseError, catalog_doc_ids, load_cases

    try:
        load_cases(set_paths, catalog_doc_ids(catalog_path))
        load_baseline(baseline_path)
    except (CaseError, BaselineError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(EXIT_ERROR) from None


@eval_app.callback(invoke_without_command=True)
def eval_main(
    ctx: typer.Context,
    sets: Optional[list[Path]] = typer.Option(
        None, "--set", help="Case file (JSONL; repeatable). Default: evals/golden.jsonl (+ evals/user.jsonl if present)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=50,
                                        help="Passages the answer is asked with (default: settings.top_k)."),
    depth: int = typer.Option(10, "--depth", min=1, max=50,
                              help="Ranking depth for hit@k and MRR (a second, untimed call when > top-k)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Baseline file (default: evals/baseline.json)."),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="Accept this run as the new baseline."),
    tolerance: float = typer.Option(0.02, "--tolerance", min=0.0, max=1.0,
                                    help="Allowed absolute drop of a metric before the gate fails."),
    html: bool = typer.Option(False, "--html", help="Also write evals/reports/latest.html."),
    url: Optional[str] = typer.Option(None, "--url", help="Evaluate a running server (POST URL/v1/ask) instead."),
    key: Optional[str] = typer.Option(None, "--key", envvar="ASSISTANT_EVAL_KEY", help="Bearer key for --url."),
    reports_dir: Optional[Path] = typer.Option(None, "--reports-dir", help="Default: evals/reports."),
    by_doc: bool = typer.Option(False, "--by-doc", help="Also print the per-document table."),
) -> None:
    """Run the eval (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    console = make_console()
    evals_dir = Path(settings.evals_dir)
    set_paths = list(sets) if sets else default_sets(evals_dir)
    k = top_k or settings.top_k
    baseline_path = baseline or evals_dir / "baseline.json"
    catalog_path = Path(settings.corpus_dir) / "catalog.toml"
    _check_inputs(console, set_paths, catalog_path, baseline_path)  # fail fast, before loading models

    if url:
        from assistant.evals.runner import HttpAsker

        if not url.startswith(("http://", "https://")):
            console.print(f"[red]error:[/red] --url must start with http:// or https:// (got {url!r})", highlight=False)
            raise typer.Exit(EXIT_ERROR)
        asker = HttpAsker(url, key)
        backend = f"http {url}"
    else:
        try:
            from assistant.compose import build_service
            from assistant.evals.runner import ServiceAsker

            service = build_service(settings)
            with console.status("loading the index and models"):
                service.load()
        except Exception as e:  # noqa: BLE001 - a clear message, not a stack trace
            console.print(f"[red]error:[/red] cannot load the assistant ({e.__class__.__name__}: {e}). "
                          "Has `assistant index` been run?", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        asker = ServiceAsker(service)
        backend = f"in-process ({settings.answerer} answerer, {settings.embedding_model})"
    try:
        outcome = run_eval(
            asker, set_paths,
            catalog_path=catalog_path,
            top_k=k, depth=depth,
            baseline_path=baseline_path,
            update_baseline=update_baseline, tolerance=tolerance, html=html,
            reports_dir=reports_dir or evals_dir / "reports",
            backend=backend, console=console, by_doc=by_doc,
        )
    finally:
        asker.close()
    raise typer.Exit(outcome.exit_code)


@eval_app.command("add-from-feedback")
def add_from_feedback_cmd(
    feedback: Optional[Path] = typer.Option(None, "--feedback", help="Feedback log (default: settings.feedback_path)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Case file to append to (default: evals/user.jsonl)."),
) -> None:
    """Turn thumbs-down feedback into draft cases (needs_review) for a person to complete."""
    from assistant.evals.cases import CaseError
    from assistant.evals.feedback import add_from_feedback

    settings = get_settings()
    evals_dir = Path(settings.evals_dir)
    out = out or evals_dir / "user.jsonl"
    if feedback is None and settings.store == "postgres":  # the workers' feedback is in the database
        from assistant.stores.shared import PgFeedbackLog, shared_store

        feedback = settings.data_dir / "feedback-from-database.jsonl"
        typer.echo(f"{PgFeedbackLog(shared_store(settings)).export(feedback)} feedback row(s) exported to {feedback}")
    try:
        drafts, counts = add_from_feedback(feedback or settings.feedback_path, out,
                                           also_known=[p for p in default_sets(evals_dir) if p != out])
    except CaseError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    typer.echo(f"{counts['lines']} feedback line(s), {counts['down']} thumbs-down, "
               f"{counts['duplicates']} already a case, {counts['invalid']} unreadable; "
               f"{len(drafts)} draft case(s) added to {out}")
    for d in drafts:
        typer.echo(f"  {d['id']}: {d['question']}")
    if drafts:
        typer.echo("Complete each draft (answer, must_include, doc, evidence, kind) and remove needs_review.")


@eval_app.command("train-ranker")
def train_ranker_cmd(
    sets: Optional[list[Path]] = typer.Option(
        None, "--set", help="Training case files (default: evals/golden.jsonl + evals/user.jsonl). Never the held-out split."),
    out: Optional[Path] = typer.Option(None, "--out", help="Model file (default: assistant/data/ranker.json)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=50, help="Passages per question (default: settings.top_k)."),
    c: float = typer.Option(1.0, "--c", min=1e-4, help="Inverse L2 regularisation strength."),
) -> None:
    """Learn the evidence ranker and its refusal threshold from the training cases."""
    from assistant.evals.cases import CaseError, catalog_doc_ids, load_cases
    from assistant.evals.train_ranker import HELDOUT_NAME, TrainingError, collect, train
    from assistant.compose import build_service
    from assistant.ranker import MODEL_FILE, Ranker

    settings = get_settings()
    console = make_console()
    evals_dir = Path(settings.evals_dir)
    set_paths = list(sets) if sets else default_sets(evals_dir)
    if any(HELDOUT_NAME in p.name for p in set_paths):
        console.print("[red]error:[/red] the held-out split is never trained on", highlight=False)
        raise typer.Exit(EXIT_ERROR)
    try:
        cases = [c for c in load_cases(set_paths, catalog_doc_ids(Path(settings.corpus_dir) / "catalog.toml"))
                 if not c.needs_review]
    except CaseError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    service = build_service(settings, ranker=Ranker.prior())
    with console.status("loading the index and models"):
        service.load()
    examples = collect(service, cases, top_k or settings.top_k)
    try:
        ranker = train(examples, c=c, sets=[_display_path(p) for p in set_paths])
    except TrainingError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    from assistant.settings import ROOT

    path = out or ROOT / "assistant" / "data" / MODEL_FILE
    ranker.save(path)
    info = ranker.trained_on
    console.print(f"{info['cases']} cases, {info['spans']} spans ({info['positive_spans']} positive); threshold "
                  f"{ranker.threshold:.3f}; cross-validated: {info['cross_validated']}", highlight=False)
    console.print(f"written: {_display_path(path)}", highlight=False)
