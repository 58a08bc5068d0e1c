"""Shared fixtures: settings in a temp data dir, fakes, and ONE real vLLM server per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The developer's own settings (RAG_LLM_BASE_URL, RAG_DATA_DIR, RAG_CONFIG, ...) must not leak
# into tests that check defaults or start their own server; only RAG_TEST_* configure the suite.
for _name in [n for n in os.environ if n.startswith("RAG_") and not n.startswith("RAG_TEST_")]:
    del os.environ[_name]
# No test may fail because the model server is slow on a busy host: tests that talk to the real
# vLLM give each request this long (timeouts themselves are tested with explicit short values).
LLM_TEST_TIMEOUT_S = os.environ.get("RAG_TEST_LLM_REQUEST_TIMEOUT", "900")
SLOW_HOST_ENV = {
    "RAG_LLM_REQUEST_TIMEOUT": LLM_TEST_TIMEOUT_S,
    "RAG_AGENT_STEP_TIMEOUT": LLM_TEST_TIMEOUT_S,
    "RAG_AGENT_TOTAL_TIMEOUT": str(4 * float(LLM_TEST_TIMEOUT_S)),
}
os.environ.update(SLOW_HOST_ENV)

from rag_app.settings import Settings  # noqa: E402
from tests.fakes import HashingEmbeddings  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SAMPLES_DIR = REPO_ROOT / "samples" / "docs"


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rag_cli(
    data_dir: Path, *args: str, cwd: Path | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """The real console entry point, offline, with its own data dir and no RAG_* setting from
    outside but `env`'s; cwd matters because ./rag.toml is read from there."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    clean.update({"RAG_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **env})
    return subprocess.run(
        [sys.executable, "-m", "rag_app.cli", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private data dir (no env or TOML leaks into unit tests)."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def fake_embeddings() -> HashingEmbeddings:
    return HashingEmbeddings()


# These stop the session's vLLM server, so they run after every other test.
RUN_LAST = ("test_llm_server.py::test_serve_reuse_stop_mid_request_leaves_no_orphans",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.endswith(RUN_LAST))  # stable: order kept otherwise


def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$RAG_TEST_DATA_DIR (kept across runs: the converted model is reused), else a tmp dir."""
    configured = os.environ.get("RAG_TEST_DATA_DIR")
    if configured:
        path = Path(configured).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.getbasetemp() / "rag-test-data"


# The suite's model: the smallest preset, so the many integration tests stay quick on 2 cores.
# The default preset (a stronger reader) has its own integration test (test_preset_qwen.py).
TEST_PRESET = "smollm2-135m"


def server_settings(data_dir: Path, port: int) -> Settings:
    """Settings for a test-managed vLLM server (never port 8000: the dev server lives there)."""
    return Settings(
        data_dir=data_dir, llm_port=port, llm_startup_timeout=900.0, llm_preset=TEST_PRESET
    )


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of a real vLLM server with the default model, one per test session.

    $RAG_TEST_LLM_BASE_URL reuses an already running server; otherwise the fixture prepares the
    default model (cached in $RAG_TEST_DATA_DIR) and starts vLLM on $RAG_TEST_LLM_PORT (8765).
    Use it as `Settings(llm_base_url=vllm_server, ...)`.
    """
    external = os.environ.get("RAG_TEST_LLM_BASE_URL")
    if external:
        yield external.rstrip("/")
        return
    from rag_app.serving import server

    port = int(os.environ.get("RAG_TEST_LLM_PORT", "8765"))
    settings = server_settings(session_data_dir(tmp_path_factory), port)
    status = server.serve(settings)
    try:
        yield status.base_url
    finally:
        server.stop(settings)


WAIT_S = 600.0  # a generous bound for a busy 2-core host; never asserted as a duration


def until(check: Callable[[], Any], what: str, wait_s: float = WAIT_S) -> Any:
    """Poll `check` until it returns something truthy (the deadline only stops a hung test)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")
