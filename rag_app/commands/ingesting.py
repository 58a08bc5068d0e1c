"""CLI command `rag ingest`: walk the paths, ingest into a KB, report one line per problem file.

The KB is opened (and the embedding model loaded) only when there is a file to load, and a KB
this run created is removed again if nothing ended up in it: `rag ingest notes.xyz` creates
nothing. Library chatter (pypdf's "invalid pdf header", transformers notes) goes to a log file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from ingest.pipeline import IngestSummary
    from rag_app.settings import Settings

LOG_NAME = "ingest.log"  # in settings.run_dir, beside the server logs
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = ("ingest", "rag_app")  # our warnings are one actionable line: they stay on stderr


class _LazyFileHandler(logging.FileHandler):
    """A FileHandler that creates its folder and file at the first record, not before."""

    def _open(self):  # type: ignore[no-untyped-def]  # (untyped in typeshed's FileHandler too)
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


@contextmanager
def library_logs_to(path: Path) -> Iterator[None]:
    """Send every log record and Python warning to `path` instead of the terminal.

    Without a handler, Python prints a library's WARNING records to stderr (logging's
    "last resort"), so one bad PDF printed pypdf's lines between the progress bars; the report
    already names each file's problem in one line.
    """
    root = logging.getLogger()
    to_file = _LazyFileHandler(path, encoding="utf-8", delay=True)
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    to_stderr.addFilter(lambda r: r.name.split(".")[0] in OWN_LOGGERS)
    level = root.level
    root.addHandler(to_file)
    root.addHandler(to_stderr)
    root.setLevel(min(level, logging.WARNING) if level else logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(to_file)
        root.removeHandler(to_stderr)
        root.setLevel(level)
        to_file.close()


def run_ingest(
    paths: Sequence[Path],
    kb: str,
    settings: Settings,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    show_progress: bool = False,
    embeddings: Embeddings | None = None,
    on_ray: bool = False,
    ray_log: Path | None = None,
) -> IngestSummary:
    """Ingest `paths` into KB `kb`; opens the KB only for files to load, and removes a KB it
    created when nothing ended up in it (only unsupported, empty or unreadable files).
    on_ray: parse and embed on Ray (settings.ray_address), see ingest/ray_ingest.py; Ray's own
    stderr output then goes to `ray_log` when one is given."""
    from ingest.kb import check_name, list_kbs, open_kb, remove_kb
    from ingest.pipeline import ingest_walk, walk_summary
    from ingest.walk import walk_paths

    check_name(kb)
    if on_ray:  # say it before the walk and the model load, not after
        from ingest.ray_session import require_ray

        require_ray()
    walk = walk_paths(paths, include, exclude)
    existed = (settings.kb_dir(kb) / "manifest.json").is_file()
    if not existed and settings.store == "postgres":  # made through another host or replica
        existed = kb in list_kbs(settings)
    if not walk.files and not (prune and existed):
        return walk_summary(walk, kb)
    knowledge_base = open_kb(kb, settings, create=True, embeddings=embeddings)
    try:
        if on_ray:
            from ingest.ray_ingest import ingest_walk_ray

            summary = ingest_walk_ray(
                walk, knowledge_base, prune, show_progress, stderr_log=ray_log
            )
        else:
            summary = ingest_walk(walk, knowledge_base, prune, show_progress)
        empty = not existed and knowledge_base.count() == 0
    finally:
        knowledge_base.close()
    if empty:  # only unsupported, empty or unreadable files: leave no KB behind
        remove_kb(kb, settings)
    return summary


def exit_code(summary: IngestSummary) -> int:
    """0 when a given document is in the KB afterwards or one was pruned, else 1 (see --help)."""
    return 0 if summary.in_kb() or summary.removed else 1


def print_summary(summary: IngestSummary) -> None:
    """The counts as a table, then one line per file that is not (again) in the KB."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"ingest into knowledge base {summary.kb!r} ({summary.seconds:.1f} s)"
    table = Table(title=title, pad_edge=False)  # fits 80 columns, a pipe's width
    columns = ("added", "changed", "unchanged", "duplicate", "removed", "failed", "skipped")
    for col in (*columns, "chunks"):
        table.add_column(col, justify="right")
    counts = [summary.added, summary.changed, summary.unchanged, len(summary.duplicates)]
    counts += [summary.removed, len(summary.failed), len(summary.skipped), summary.chunks_written]
    table.add_row(*[str(c) for c in counts])
    console.print(table)
    issues = (("failed", summary.failed), ("skipped", summary.skipped))
    for label, found in (*issues, ("duplicate", summary.duplicates)):
        for issue in found:
            # soft_wrap: a long path stays one line (a pipe or log keeps it whole)
            line = f"[bold]{label}[/bold] {issue.source}: {issue.reason}"
            console.print(line, highlight=False, soft_wrap=True)


def _progress_wanted(as_json: bool) -> bool:
    """Progress bars only for a person watching: never with --json or into a pipe or file."""
    return not as_json and sys.stderr.isatty()


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively).")],
    kb: Annotated[
        str | None, typer.Option("--kb", help="Knowledge base name (default: settings.kb).")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="Only files matching this glob (repeatable), e.g. '*.md'."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Skip files matching this glob (repeatable)."),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove documents under PATH whose files are gone.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead.")
    ] = False,
    on_ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Parse and embed on Ray Data (the ray extra): for large collections, on this "
            "machine's cores or a Ray cluster (setting ray_address). Same checks and report; "
            "only this process writes the KB.",
        ),
    ] = False,
) -> None:
    """Ingest documents (.txt .md .html .pdf .docx .csv .json) into a knowledge base.

    Unchanged files are skipped, changed ones replaced; hidden files are not walked.
    A file whose content the KB already holds under another path is reported, not added twice.
    Unreadable files get one line each (library messages go to DATA_DIR/run/ingest.log).
    No knowledge base is created unless a document is added to it.

    Exit 0 if any given document is in the KB afterwards, or --prune removed one.
    Exit 1 if none is (each failed, was skipped or is missing), or on an error (KB locked...).
    Exit 2 on bad usage (unknown option, no PATH).
    """
    from rag_app.settings import get_settings

    missing = [str(p) for p in paths if not p.exists()]
    if missing and len(missing) == len(paths) and not as_json:
        from rag_app.errors import IngestError

        raise IngestError(  # nothing to do: say so at once, load nothing
            f"no such file or folder: {', '.join(missing)} (check the path; nothing was ingested)"
        )
    # A missing path beside existing ones is reported in the summary; the rest is ingested.
    settings = get_settings()
    progress = _progress_wanted(as_json)
    log = settings.run_dir / LOG_NAME
    with library_logs_to(log):
        summary = run_ingest(
            paths,
            kb or settings.kb,
            settings,
            include=include or (),
            exclude=exclude or (),
            prune=prune,
            show_progress=progress,
            on_ray=on_ray,
            ray_log=None if progress else log,  # a terminal shows Ray's notes with its bars
        )
    if as_json:
        typer.echo(summary.model_dump_json())
    else:
        print_summary(summary)
    raise typer.Exit(exit_code(summary))
