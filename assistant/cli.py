"""The ``assistant`` command: index, ask, serve, eval.

Each verb is a thin shell over a module that does the work; heavy imports happen inside
the verb so that ``assistant --help`` stays instant.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Optional

import typer

from assistant.settings import get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Questions to the IOM partnership documents, answered with exact citations.")


def _configure_logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("faiss").setLevel(logging.WARNING)  # it announces which CPU build it loaded


@app.callback()
def main() -> None:
    _configure_logging()


@app.command()
def index(
    if_stale: bool = typer.Option(False, "--if-stale", help="Do nothing when the index is up to date."),
) -> None:
    """Build or update the index from corpus/ (incremental and atomic)."""
    from assistant.indexing import build_index_cli

    raise typer.Exit(build_index_cli(get_settings(), if_stale=if_stale))


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in English or Swedish."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer record as JSON."),
    top_k: int = typer.Option(5, "--top-k", min=1, max=50),
    doc: Optional[list[str]] = typer.Option(None, "--doc", help="Restrict to a document id (repeatable)."),
) -> None:
    """Answer a question with numbered sources."""
    from assistant.render import answer_with_sources
    from assistant.compose import build_service
    from assistant.records import Filters
    from assistant.store import IndexUnavailable

    service = build_service(get_settings())
    try:
        service.load()
    except IndexUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    filters = Filters(document_ids=doc) if doc else None
    answer = service.ask(question, top_k=top_k, filters=filters)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(), ensure_ascii=False, indent=2))
    else:
        typer.echo(answer_with_sources(answer, markdown=False))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", min=1),
) -> None:
    """Serve the HTTP API and the browser UI."""
    from assistant.server import run

    try:
        run(get_settings(), host=host, port=port, workers=workers)
    except ValueError as exc:  # e.g. a public bind without API keys
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


from assistant.evals.cli import eval_app  # noqa: E402  (after `app`: the eval verbs attach to it)

app.add_typer(eval_app, name="eval")

if __name__ == "__main__":
    app()
