"""LLM server control: start, probe and stop the local vLLM OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from rag_app.errors import LLMError
from rag_app.serving import ondemand, runstate
from rag_app.serving.launch import server_command, server_env
from rag_app.serving.processes import stop_recorded, vllm_alive
from rag_app.settings import Settings

LOG_TAIL_LINES = 25
PROBE_TIMEOUT_S = 5.0  # /v1/models is instant when idle, slow on a busy 2-core machine
Notify = Callable[[str], None]


@dataclass(frozen=True)
class ServerStatus:
    """What is known about the local server on the configured host and port."""

    base_url: str
    healthy: bool
    pid: int | None
    model: str | None
    log_path: Path
    managed: bool  # started by us (pid file present) rather than found running
    started_by: str | None = None  # ondemand.BY_HAND or ON_DEMAND when managed
    idle_minutes: float = 0.0  # its idle timeout; 0 = none
    last_activity: float | None = None  # epoch seconds, as last seen by its idle watcher


def base_url(settings: Settings) -> str:
    return f"http://{settings.llm_host}:{settings.llm_port}/v1"


def pid_path(settings: Settings) -> Path:
    return settings.run_dir / f"vllm-{settings.llm_port}.json"


def log_path(settings: Settings) -> Path:
    return settings.run_dir / f"vllm-{settings.llm_port}.log"


def _to_stderr(message: str) -> None:
    # Library callers (eval, bench, scripts) see the notice too; front ends pass their own.
    print(message, file=sys.stderr, flush=True)


def served_models(url: str, timeout: float = PROBE_TIMEOUT_S) -> list[str] | None:
    """Model ids listed by an OpenAI-compatible `url` (…/v1), or None when it does not answer so."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/models", timeout=timeout)
        response.raise_for_status()
        return [str(item["id"]) for item in response.json()["data"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _read_pid_file(settings: Settings) -> dict[str, object] | None:
    try:
        data = json.loads(pid_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def status(settings: Settings) -> ServerStatus:
    """Probe the configured port and our pid file; never starts anything."""
    record = _read_pid_file(settings)
    pid = int(str(record["pid"])) if record else None
    managed = vllm_alive(pid)
    models = served_models(base_url(settings))
    model = models[0] if models else (str(record.get("served_name")) if record else None)
    return ServerStatus(
        base_url=base_url(settings),
        healthy=bool(models),
        pid=pid if managed else None,
        model=model,
        log_path=log_path(settings),
        managed=managed,
        started_by=str(record.get("started_by", ondemand.BY_HAND)) if managed and record else None,
        idle_minutes=float(str(record.get("idle_minutes", 0))) if managed and record else 0.0,
        last_activity=runstate.read_activity(pid_path(settings)) if managed else None,
    )


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


@contextlib.contextmanager
def _port_lock(settings: Settings) -> Iterator[None]:
    """Serialise serve() per port across threads and processes (UI, CLI and eval workers)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with (settings.run_dir / f"vllm-{settings.llm_port}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def serve(settings: Settings, by_hand: bool = False, notify: Notify | None = None) -> ServerStatus:
    """Start vLLM for the configured model (or reuse a healthy one) and wait until it answers.

    On demand (the default) the user is told at once what starts and why (`notify`, default
    stderr), and the server stops itself after settings.llm_idle_minutes without requests.
    By hand (`rag llm serve`) it says nothing and keeps running unless llm_idle_minutes > 0.
    """
    current = status(settings)
    if current.healthy:  # fast path: no lock
        return _reuse(settings, current)
    with _port_lock(settings):
        return _serve_locked(settings, by_hand, notify or _to_stderr)


def _reuse(settings: Settings, current: ServerStatus) -> ServerStatus:
    from rag_app.serving.model import choose_model

    wanted = choose_model(settings).served_name
    if current.model != wanted:
        raise LLMError(
            f"port {settings.llm_port} already serves model {current.model!r}, not {wanted!r}: "
            "stop that server (`rag llm stop`) or set RAG_LLM_PORT to another port"
        )
    return current


def check_port_free(settings: Settings) -> None:
    """LLMError when another program holds the port (checked before minutes of preparing)."""
    if port_in_use(settings.llm_host, settings.llm_port):
        raise LLMError(
            f"port {settings.llm_port} on {settings.llm_host} is in use by another program "
            "that is not an OpenAI-compatible server: free it or set RAG_LLM_PORT to another port"
        )


def _serve_locked(settings: Settings, by_hand: bool, notify: Notify) -> ServerStatus:
    from rag_app.serving.model import choose_model, prepare_model

    current = status(settings)
    if current.managed and not current.healthy:  # ours, still starting (or stuck): wait for it
        if not by_hand:
            notify(f"Waiting for the local model server another command is starting "
                   f"(log: {log_path(settings)}) ...")  # fmt: skip
        return _wait_ready(settings, current.pid, time.monotonic())
    if current.healthy:
        return _reuse(settings, current)
    runstate.remove_record(pid_path(settings))  # stale: its process is gone
    check_port_free(settings)
    started_by = ondemand.BY_HAND if by_hand else ondemand.ON_DEMAND
    if not by_hand:  # before preparing: a first start converts the model too (minutes)
        address = f"{settings.llm_host}:{settings.llm_port}"
        name = choose_model(settings).served_name
        notify(ondemand.start_notice(name, address, settings.llm_idle_minutes,
                                     runstate.last_start_s(settings.run_dir, name),
                                     str(log_path(settings))))  # fmt: skip
    prepared = prepare_model(settings)
    started = time.monotonic()
    pid = _launch(settings, prepared.path, prepared.served_name, started_by)
    ready = _wait_ready(settings, pid, started)
    took = time.monotonic() - started
    runstate.record_start_s(settings.run_dir, prepared.served_name, took)
    if not by_hand:
        notify(ondemand.ready_notice(took))
    return ready


def _launch(settings: Settings, model_dir: Path, served_name: str, started_by: str) -> int:
    """Start the server in its own session (so stop() can kill the whole group), its idle
    watcher when it has an idle timeout, and record both in the pid file."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(settings, model_dir, served_name)
    with log_path(settings).open("ab") as log:
        log.write(f"\n=== {datetime.now(UTC).isoformat()} {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(),
            start_new_session=True,
        )
    record: dict[str, object] = {"pid": process.pid, "port": settings.llm_port}
    record |= {"served_name": served_name, "model_dir": str(model_dir)}
    record |= {"started_by": started_by, "idle_minutes": settings.llm_idle_minutes}
    record["started_at"] = time.time()
    runstate.write_atomic(pid_path(settings), json.dumps(record))
    if settings.llm_idle_minutes > 0:
        metrics = f"http://{settings.llm_host}:{settings.llm_port}/metrics"
        record["watcher_pid"] = runstate.launch_watcher(
            pid_path(settings), metrics, settings.llm_idle_minutes, process.pid, log_path(settings)
        )
        runstate.write_atomic(pid_path(settings), json.dumps(record))
    return process.pid


def log_tail(settings: Settings, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path(settings).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(settings: Settings, pid: int | None, started: float) -> ServerStatus:
    """Poll /v1/models until the server answers, dies or the start-up timeout passes."""
    deadline = started + settings.llm_startup_timeout
    while time.monotonic() < deadline:
        current = status(settings)
        if current.healthy:
            return current
        if not vllm_alive(pid):
            stop_recorded(pid_path(settings))  # its idle watcher and run files go with it
            raise LLMError(
                f"the vLLM server exited during start-up; see {log_path(settings)}. "
                f"Log tail:\n{log_tail(settings)}"
            )
        time.sleep(1.0)
    stop(settings)
    raise LLMError(
        f"the vLLM server was not ready after {settings.llm_startup_timeout:.0f}s "
        f"(RAG_LLM_STARTUP_TIMEOUT); see {log_path(settings)}. Log tail:\n{log_tail(settings)}"
    )


def stop(settings: Settings) -> bool:
    """Stop the server we started on this port: its whole process group, then stray children."""
    return stop_recorded(pid_path(settings))
