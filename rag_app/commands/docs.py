"""CLI commands (docs): `rag ingest`, `rag kb list|stats|remove`, `rag search`.

Heavy imports (torch, faiss, langchain) stay inside the command functions so `rag --help` is fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase
    from ingest.pipeline import IngestSummary
    from rag_app.records import Hit
    from rag_app.settings import Settings

KbOption = Annotated[
    str | None, typer.Option("--kb", help="Knowledge base name (default: settings.kb).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]

kb_app = typer.Typer(help="List, inspect and remove knowledge bases.", no_args_is_help=True)


def _settings() -> Settings:
    from rag_app.settings import get_settings

    return get_settings()


def _print_summary(summary: IngestSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"ingest into knowledge base {summary.kb!r}")
    for col in ("added", "changed", "unchanged", "removed", "failed", "skipped", "chunks", "sec"):
        table.add_column(col, justify="right")
    counts = [summary.added, summary.changed, summary.unchanged, summary.removed]
    counts += [len(summary.failed), len(summary.skipped), summary.chunks_written]
    table.add_row(*[str(c) for c in counts], f"{summary.seconds:.1f}")
    console.print(table)
    for label, issues in (("failed", summary.failed), ("skipped", summary.skipped)):
        for issue in issues:
            console.print(f"[bold]{label}[/bold] {issue.source}: {issue.reason}", highlight=False)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively).")],
    kb: KbOption = None,
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
    as_json: JsonOption = False,
) -> None:
    """Ingest documents (.txt .md .html .pdf .docx .csv .json) into a knowledge base.

    Unchanged files are skipped and changed ones replaced; hidden files are not walked.

    Files that cannot be read are listed with their reasons; the rest are ingested.

    Exit code 0 if any document is in the KB afterwards (added, changed, unchanged); else 1.
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):  # nothing to do: say so at once, load nothing
        if as_json:
            from ingest.pipeline import FileIssue, IngestSummary

            issues = [FileIssue(source=m, reason="path does not exist") for m in missing]
            typer.echo(IngestSummary(kb=kb or "", failed=issues).model_dump_json())
            raise typer.Exit(1)
        from rag_app.errors import IngestError

        raise IngestError(
            f"no such file or folder: {', '.join(missing)} (check the path; nothing was ingested)"
        )
    # A missing path beside existing ones is reported in the summary; the rest is ingested.
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths

    settings = _settings()
    knowledge_base = open_kb(kb, settings, create=True)
    summary = ingest_paths(
        paths, knowledge_base, include or (), exclude or (), prune, show_progress=not as_json
    )
    if as_json:
        typer.echo(summary.model_dump_json())
    else:
        _print_summary(summary)
    if summary.failed and not (summary.added + summary.changed + summary.unchanged):
        raise typer.Exit(1)


@kb_app.command("list")
def kb_list(as_json: JsonOption = False) -> None:
    """List the knowledge bases in the data dir."""
    from ingest.kb import list_kbs

    names = list_kbs(_settings())
    if as_json:
        typer.echo(json.dumps(names))
    else:
        typer.echo("\n".join(names) if names else "no knowledge bases yet: run `rag ingest PATH`")


def _stats(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        **kb.stats(),
        "path": str(kb.path),
        "bytes_on_disk": sum(p.stat().st_size for p in kb.path.rglob("*") if p.is_file()),
        "sources": [
            {"source": s.source, "chunks": s.chunks, "ingested_at": s.ingested_at}
            for s in kb.sources()
        ],
    }


@kb_app.command("stats")
def kb_stats(
    name: Annotated[
        str | None, typer.Argument(help="Knowledge base (default: settings.kb).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a knowledge base's model, store, documents and chunk counts."""
    from ingest.kb import open_kb

    stats = _stats(open_kb(name, _settings()))
    if as_json:
        typer.echo(json.dumps(stats))
        return
    for key, value in stats.items():
        if key != "sources":
            typer.echo(f"{key:16} {value}")
    for s in stats["sources"]:
        typer.echo(f"  {s['chunks']:5d}  {s['source']}")


@kb_app.command("remove")
def kb_remove(
    name: Annotated[str, typer.Argument(help="Knowledge base to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a knowledge base (its index, catalog and manifest)."""
    from ingest.kb import remove_kb
    from rag_app.errors import KnowledgeBaseError

    settings = _settings()
    if not settings.kb_dir(name).exists():
        raise KnowledgeBaseError(f"knowledge base {name} does not exist in {settings.kb_root}")
    if not yes:
        typer.confirm(f"Delete knowledge base {name} at {settings.kb_dir(name)}?", abort=True)
    remove_kb(name, settings)
    typer.echo(f"removed knowledge base {name}")


def _search_hits(
    query: str, kb: KnowledgeBase, k: int, source: str | None
) -> tuple[str, list[Hit]]:
    """Hybrid retrieval once rag_app.answering.retrieve exists; plain dense search until then."""
    from rag_app.records import Hit

    try:
        from rag_app.answering.retrieve import retrieve
    except ModuleNotFoundError as exc:
        if exc.name != "rag_app.answering.retrieve":
            raise
        found = kb.dense_search(query, k, source)
        hits = [
            Hit(chunk=c, score=s, dense_score=s, dense_rank=r)
            for r, (c, s) in enumerate(found, start=1)
        ]
        return "dense", hits
    return "hybrid", retrieve(query, kb, kb.settings, k=k, source=source)


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    kb: KbOption = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Passages to show.")] = 5,
    source: Annotated[
        str | None, typer.Option("--source", help="Only passages from this source path.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the passages a knowledge base returns for QUERY, with source, page and score."""
    from ingest.kb import open_kb

    knowledge_base = open_kb(kb, _settings())
    mode, hits = _search_hits(query, knowledge_base, k, source)
    if as_json:
        payload: dict[str, Any] = {"kb": knowledge_base.name, "query": query, "mode": mode}
        payload["hits"] = [h.model_dump(mode="json") for h in hits]
        typer.echo(json.dumps(payload))
        return
    if not hits:
        typer.echo(f"no passages found in knowledge base {knowledge_base.name}")
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        where = (
            c.source
            + (f" p.{c.page}" if c.page else "")
            + (f" § {c.section}" if c.headings else "")
        )
        typer.secho(f"[{rank}] score {hit.score:.3f}  {where}", bold=True)
        typer.echo("    " + " ".join(c.text.split())[:400])


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.add_typer(kb_app, name="kb")
