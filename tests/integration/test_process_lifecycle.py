"""Real processes leave none behind: `rag ui` on SIGTERM or SIGHUP stops Streamlit, and a vLLM
server started on demand stops itself (and its idle watcher) once idle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from rag_app.serving import processes, runstate, server
from tests.conftest import free_port, server_settings, session_data_dir

pytestmark = pytest.mark.integration
STARTUP_TIMEOUT_S = 300


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"rag ui exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"rag ui not healthy after {STARTUP_TIMEOUT_S} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_to_rag_ui_stops_streamlit(
    sig: signal.Signals, vllm_server: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {"RAG_DATA_DIR": str(tmp_path), "RAG_LLM_BASE_URL": vllm_server}
    env["RAG_LLM_REQUEST_TIMEOUT"] = "900"
    # Not its own session: a user's terminal signals `rag` alone when it closes (SIGHUP).
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_app.cli", "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert tree, "streamlit should run as a child of rag ui"
        proc.send_signal(sig)
        proc.wait(timeout=60)
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert not alive, f"orphans: {[(p.pid, p.cmdline()) for p in alive]}"
        with socket.socket() as sock:  # the port is free again
            sock.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_on_demand_server_stops_itself_when_idle(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A tiny llm_idle_minutes (6 s): after one request the server and its watcher go away by
    themselves, with no pid or activity file left. Its own port: the session's server stays."""
    settings = server_settings(session_data_dir(tmp_path_factory), free_port())
    settings = settings.model_copy(update={"llm_idle_minutes": 0.1})
    status = server.serve(settings)  # on demand, as `rag ask` does
    try:
        assert status.managed and status.pid and status.started_by == "on demand"
        record = json_record(server.pid_path(settings))
        watcher = psutil.Process(int(str(record["watcher_pid"])))
        family = [*processes.server_family(status.pid), watcher]
        assert len(family) >= 3  # API server, engine core, watcher
        assert server.served_models(status.base_url)
        deadline = time.monotonic() + 300  # bounds a hang; how soon it stops is not the test
        while server.pid_path(settings).exists() and time.monotonic() < deadline:
            time.sleep(1.0)
        _, alive = psutil.wait_procs(family, timeout=60)
        assert not alive, f"orphans: {[(p.pid, p.cmdline()) for p in alive]}"
        assert not server.pid_path(settings).exists()
        assert not runstate.activity_path(server.pid_path(settings)).exists()
        assert not server.status(settings).healthy
    finally:
        server.stop(settings)


def json_record(path: Path) -> dict[str, object]:
    import json

    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data
