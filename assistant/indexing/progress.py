"""``assistant index``: the build with a progress bar, and what happened."""

from __future__ import annotations

from assistant.catalog import CatalogError
from assistant.indexing.pipeline import build_index
from assistant.indexing.staleness import is_stale
from assistant.settings import Settings
from assistant.store import IndexUnavailable


def build_index_cli(settings: Settings, if_stale: bool = False) -> int:
    """Build with a progress bar, print what happened; exit 1 if a document failed, 2 if nothing was built."""
    from rich.console import Console
    from rich.progress import Progress

    from assistant import compose

    console = Console(stderr=True)
    store = compose.make_store(settings)
    if if_stale and not is_stale(settings, store):
        console.print(f"index is up to date ({store.manifest()['passage_count']} passages)")
        return 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("embedding passages", total=None)

        def progress(advance: int, total: int) -> None:
            bar.update(task, advance=advance, total=total)

        try:
            report = build_index(settings, progress=progress, store=store)
        except (IndexUnavailable, CatalogError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 2
    for err in report.errors:
        console.print(f"[red]error:[/red] {err}")
    print(
        f"indexed {report.passages} passages from {report.documents} documents "
        f"({report.embedded} embedded, the rest cached; {report.spans_embedded} sentence/row vectors embedded) "
        f"in {report.seconds:.1f} s -> {store.name} build {report.build_id}"
    )
    return 1 if report.errors else 0
