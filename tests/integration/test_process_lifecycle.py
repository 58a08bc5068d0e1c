"""A real `rag ui`: SIGTERM or SIGHUP to the `rag` process stops Streamlit too (no orphans)."""

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

pytestmark = pytest.mark.integration
STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
