"""CLI commands (HTTP API): `rag serve` runs the API under uvicorn; `rag keys` manages its keys.

Heavy imports (fastapi, torch, langchain) stay inside the command functions so `rag --help` is fast.
"""

from __future__ import annotations

import ipaddress
import json
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rag_app.settings import Settings

keys_app = typer.Typer(
    help="Create, list and revoke API keys of `rag serve`.", no_args_is_help=True
)
GRACEFUL_SHUTDOWN_S = 10  # open streams get this long to finish after SIGTERM / Ctrl-C


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, has_keys: bool) -> None:
    """No key configured means anyone reaching the port is an admin: loopback only then."""
    from rag_app.errors import ConfigError

    if not is_loopback(host) and not has_keys:
        raise ConfigError(
            f"refusing to listen on {host}: no API key is configured, so anyone reaching it "
            "could read and change every knowledge base. Create a key first "
            "(`rag keys create --role admin --kb '*'`) or listen on 127.0.0.1"
        )


def _settings(host: str | None, port: int | None) -> Settings:
    from rag_app.settings import get_settings

    settings = get_settings()
    update: dict[str, Any] = {}
    if host:
        update["api_host"] = host
    if port:
        update["api_port"] = port
    return settings.model_copy(update=update) if update else settings


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: setting api_host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: setting api_port, 8300).")
    ] = None,
    keep_llm: Annotated[
        bool,
        typer.Option("--keep-llm", help="Leave a vLLM server this command started running."),
    ] = False,
) -> None:
    """Serve the HTTP API: OpenAI-compatible chat with verified citations, REST for KBs.

    Starts the local vLLM server when needed (like `rag ask`), or uses RAG_LLM_BASE_URL.
    Stops cleanly on Ctrl-C or SIGTERM (and stops the vLLM server it started).
    """
    import uvicorn

    from ingest.embed import limit_threads
    from rag_app.api import create_app
    from rag_app.api.backends import open_keys
    from rag_app.errors import RagError

    settings = _settings(host, port)
    keys = open_keys(settings)
    check_bind(settings.api_host, keys.has_active())
    keys.close()
    limit_threads(settings)
    started_llm = _start_llm(settings)
    # uvicorn re-raises SIGTERM / SIGINT after its graceful shutdown with the handlers it found:
    # make them a clean exit that still runs the `finally` below (stopping what we started).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_on_signal)
    try:
        app = create_app(settings)
        state = app.state.api
        state.embeddings()  # load now, not during the first request
        try:
            state.llm()
        except RagError as exc:  # answers get 503 until the model server is back
            typer.secho(f"warning: {exc}", fg=typer.colors.YELLOW, err=True)
        typer.echo(
            f"rag serve: http://{settings.api_host}:{settings.api_port}  (docs at /docs; "
            f"keys {'required' if state.keys.has_active() else 'off: local mode, loopback only'})"
        )
        config = uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_level="info",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        uvicorn.Server(config).run()
    finally:
        if started_llm and not keep_llm:
            from rag_app.serving import server

            server.stop(settings)


def _start_llm(settings: Settings) -> bool:
    """Start the local vLLM server unless one is configured or running; True if started here."""
    if settings.llm_base_url:
        return False
    from rag_app.serving import server

    if server.status(settings).healthy:
        return False

    def notify(message: str) -> None:  # stderr: where uvicorn logs, so a service log shows it
        typer.secho(f"rag serve: {message}", err=True)

    notify("no model server answers yet: it starts first, then the API listens; "
           "`rag serve` stops it on exit (--keep-llm leaves it running)")  # fmt: skip
    server.serve(settings, notify=notify)
    return True


@keys_app.command("create")
def keys_create(
    kb: Annotated[
        list[str],
        typer.Option("--kb", help="Knowledge base the key may use (repeatable; '*' = all)."),
    ],
    role: Annotated[
        str, typer.Option("--role", help="reader: ask and search; editor: + documents; admin: all.")
    ] = "reader",
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    from rag_app.api.backends import open_keys
    from rag_app.settings import get_settings

    record, plain = open_keys(get_settings()).create(name, role, kb)
    if as_json:
        typer.echo(json.dumps({"id": record.id, "key": plain, "role": record.role,
                               "kbs": list(record.kbs), "name": record.name}))  # fmt: skip
        return
    typer.echo(plain)
    typer.secho(
        f"key {record.id} ({record.role}, knowledge bases: {', '.join(record.kbs)}): "
        "copy it now, it is not shown again",
        err=True,
    )


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List keys (ids, roles, knowledge bases; never the keys themselves)."""
    from rag_app.api.backends import open_keys
    from rag_app.settings import get_settings

    keys = open_keys(get_settings()).all_keys()
    if as_json:
        typer.echo(json.dumps([k.__dict__ | {"kbs": list(k.kbs)} for k in keys]))
        return
    if not keys:
        typer.echo("no API keys: `rag serve` runs in local mode (loopback only)")
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        typer.echo(f"{k.id}  {k.role:7}  {','.join(k.kbs):24}  {state:30}  {k.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (or the key).")]) -> None:
    """Revoke a key: the running server refuses it from its next request on."""
    from rag_app.api.backends import open_keys
    from rag_app.errors import ConfigError
    from rag_app.settings import get_settings

    if not open_keys(get_settings()).revoke(key_id):
        raise ConfigError(f"no active API key {key_id!r}: `rag keys list` shows them")
    typer.echo(f"revoked key {key_id}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
