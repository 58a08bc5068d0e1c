"""CLI commands (system): config, model, llm server, doctor; heavy imports stay inside commands."""

from __future__ import annotations

import json

import typer

config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)
model_app = typer.Typer(help="Prepare the model vLLM serves.", no_args_is_help=True)
llm_app = typer.Typer(help="Start, inspect and stop the local vLLM server.", no_args_is_help=True)


@config_app.command("show")
def config_show(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Print every setting, its effective value and where it came from (env, toml, default)."""
    from rag_app.settings import get_settings, setting_sources, settings_dump

    settings = get_settings()
    values, sources = settings_dump(settings), setting_sources(settings)
    if as_json:
        doc = {name: {"value": values[name], "source": sources[name]} for name in values}
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("setting", "value", "source")
    for name, value in values.items():
        table.add_row(name, json.dumps(value), sources[name])
    Console().print(table)


@model_app.command("prepare")
def model_prepare(
    model: str = typer.Option(
        "", "--model", help="HF model folder or .gguf file (default: RAG_LLM_MODEL or bundled)."
    ),
) -> None:
    """Convert the model once (GGUF -> bf16 HF folder in the data dir) and print its folder."""
    from rag_app.serving.model import find_prepared, model_source, prepare_model
    from rag_app.settings import get_settings

    settings = get_settings()
    if find_prepared(settings, model or None) is None:
        source = model_source(settings, model or None)
        typer.echo(f"converting {source} to a bf16 HF folder (once; about a minute) ...")
    prepared = prepare_model(settings, model or None)
    how = "reused" if prepared.reused else "converted"
    typer.echo(f"{how}: {prepared.path}  (served as {prepared.served_name!r})")


@llm_app.command("serve")
def llm_serve() -> None:
    """Start the local vLLM server (or reuse a healthy one) and wait until it answers."""
    from rich.console import Console

    from rag_app.serving import server
    from rag_app.settings import get_settings

    settings = get_settings()
    log = server.log_path(settings)
    typer.echo(f"starting (or reusing) vLLM on port {settings.llm_port}; log: {log}")
    with Console(stderr=True).status("waiting for vLLM to answer /v1/models ..."):
        status = server.serve(settings)
    owner = f"pid {status.pid}" if status.pid else "not started by rag"
    typer.echo(f"ready: {status.base_url} serves {status.model!r} ({owner})")


@llm_app.command("status")
def llm_status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Say whether the local server answers; exit 1 when it does not."""
    from rag_app.serving import server
    from rag_app.settings import get_settings

    status = server.status(get_settings())
    if as_json:
        doc = {
            "base_url": status.base_url,
            "healthy": status.healthy,
            "pid": status.pid,
            "model": status.model,
            "log_path": str(status.log_path),
            "managed": status.managed,
        }
        typer.echo(json.dumps(doc))
    elif status.healthy:
        owner = f"pid {status.pid}" if status.pid else "not started by rag"
        typer.echo(f"healthy: {status.base_url} serves {status.model!r} ({owner})")
    else:
        where = f"starting or stuck (pid {status.pid})" if status.managed else "not running"
        typer.echo(f"{where}: {status.base_url} does not answer; log: {status.log_path}")
    if not status.healthy:
        raise typer.Exit(1)


@llm_app.command("stop")
def llm_stop() -> None:
    """Stop the local server started by `rag llm serve` (its whole process group)."""
    from rag_app.serving import server
    from rag_app.settings import get_settings

    settings = get_settings()
    if server.stop(settings):
        typer.echo(f"stopped the server on port {settings.llm_port}")
    else:
        typer.echo(f"no server started by rag is running on port {settings.llm_port}")


def doctor() -> None:
    """Check Python, torch, vllm, the model, the server and disk; say what to do about failures."""
    from rag_app.commands.doctor import run_checks
    from rag_app.settings import get_settings

    failed = False
    for check in run_checks(get_settings()):
        mark = "ok  " if check.ok else ("info" if check.info_only else "FAIL")
        line = f"[{mark}] {check.name}: {check.detail}"
        if not check.ok:
            line += f"  -> {check.fix}"
            failed = failed or not check.info_only
        typer.echo(line)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.add_typer(config_app, name="config", help="Show the effective settings and their sources.")
    app.add_typer(model_app, name="model", help="Prepare the model (GGUF -> HF folder, cached).")
    app.add_typer(llm_app, name="llm", help="Start, inspect and stop the local vLLM server.")
    app.command("doctor", help="Check the environment and say what to fix.")(doctor)
