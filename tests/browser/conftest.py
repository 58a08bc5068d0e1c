"""Browser-test fixtures: a real `rag ui` (streamlit run) over the ingested samples; Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SLOW_HOST_ENV, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "samples" / "docs"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
STARTUP_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def ui_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose default knowledge base holds the sample documents (real MiniLM)."""
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths
    from rag_app.settings import Settings

    data_dir = tmp_path_factory.mktemp("ui-data")
    kb = open_kb("default", settings=Settings(data_dir=data_dir), create=True)
    summary = ingest_paths([SAMPLES_DIR], kb)
    kb.close()
    assert summary.added >= 5 and not summary.failed, summary
    return data_dir


@pytest.fixture(scope="module")
def ui_url(ui_data_dir: Path, vllm_server: str) -> Iterator[str]:
    """Start `rag ui` (streamlit run) on a free port against the real vLLM server."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAG_")},
        "RAG_DATA_DIR": str(ui_data_dir),
        "RAG_LLM_BASE_URL": vllm_server,
        **SLOW_HOST_ENV,  # a busy host is slow, not broken
        "HF_HUB_OFFLINE": "1",
    }
    log_path = ui_data_dir / "ui.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag_app.cli", "ui", "--port", str(port)],
            cwd=ui_data_dir,  # no stray ./rag.toml is picked up
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown stops streamlit too
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log_path)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"rag ui exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"rag ui not healthy after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser_page(ui_url: str) -> Iterator[object]:
    """A Chromium page on the app (Debian's Chromium; Playwright never downloads a browser)."""
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(ui_url)
        try:
            yield page
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """On a failed browser step, save what the page showed (tests/artifacts/failed_<test>.png)."""
    report = yield
    page = getattr(item, "funcargs", {}).get("browser_page")
    if report.when == "call" and report.failed and page is not None:
        try:
            page.screenshot(path=str(ARTIFACTS / f"failed_{item.name}.png"), timeout=10_000)
        except Exception as exc:  # a dead page must not hide the test's own failure
            report.sections.append(("screenshot", f"no failure screenshot: {exc}"))
    return report
