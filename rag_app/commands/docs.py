"""CLI commands (docs): `rag kb list|stats|remove` (`rag ingest` is in ingesting.py, `rag search`
in search.py).

Heavy imports (torch, faiss, langchain) stay inside the command functions so `rag --help` is fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag_app.commands.ingesting import ingest
from rag_app.commands.search import search

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase
    from rag_app.settings import Settings

KbOption = Annotated[
    str | None, typer.Option("--kb", help="Knowledge base name (default: settings.kb).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]

kb_app = typer.Typer(help="List, inspect and remove knowledge bases.", no_args_is_help=True)


def _settings() -> Settings:
    from rag_app.settings import get_settings

    return get_settings()


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
    kb: KbOption = None,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Deprecated: use --kb NAME (kept so old scripts still work).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a knowledge base's model, store, documents and chunk counts (--kb NAME)."""
    from ingest.kb import open_kb

    stats = _stats(open_kb(_kb_name(kb, name), _settings()))
    if as_json:
        typer.echo(json.dumps(stats))
        return
    for key, value in stats.items():
        if key != "sources":
            typer.echo(f"{key:16} {value}")
    for s in stats["sources"]:
        typer.echo(f"  {s['chunks']:5d}  {s['source']}")


def _kb_name(option: str | None, positional: str | None) -> str | None:
    """--kb, or the old positional NAME; every other command takes --kb, so stats does too."""
    if option and positional and option != positional:
        raise typer.BadParameter(
            f"--kb {option} and NAME {positional} disagree; give only --kb", param_hint="--kb"
        )
    return option or positional


@kb_app.command("remove")
def kb_remove(
    name: Annotated[str, typer.Argument(help="Knowledge base to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a knowledge base (its index, catalog and manifest)."""
    from ingest.kb import list_kbs, remove_kb
    from rag_app.errors import KnowledgeBaseError

    settings = _settings()
    if not settings.kb_dir(name).exists() and name not in list_kbs(settings):
        raise KnowledgeBaseError(f"knowledge base {name} does not exist in {settings.kb_root}")
    if not yes:
        typer.confirm(f"Delete knowledge base {name} at {settings.kb_dir(name)}?", abort=True)
    remove_kb(name, settings)
    typer.echo(f"removed knowledge base {name}")


@kb_app.command("copy")
def kb_copy(
    name: Annotated[str, typer.Argument(help="Knowledge base of this data dir to copy.")],
    to: Annotated[str, typer.Option("--to", help="Target store (postgres).")] = "postgres",
) -> None:
    """Copy a FAISS or Chroma KB into Postgres with its stored vectors (no re-embedding); the
    old folder is kept under <data_dir>/backups/."""
    from ingest.kb_copy import copy_to_postgres
    from rag_app.errors import ConfigError

    if to != "postgres":
        raise ConfigError(f"unknown target store {to!r}: only --to postgres is supported")
    report = copy_to_postgres(name, _settings())
    typer.echo(
        f"copied knowledge base {name} to Postgres: {report.documents} documents, "
        f"{report.chunks} chunks (no re-embedding); the old copy is in {report.backup}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.add_typer(kb_app, name="kb")
