"""Shared fixtures: settings in a temp data dir, fakes, and ONE real vLLM server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rag_app.settings import Settings  # noqa: E402
from tests.fakes import HashingEmbeddings  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SAMPLES_DIR = REPO_ROOT / "samples"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private data dir (no env or TOML leaks into unit tests)."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def fake_embeddings() -> HashingEmbeddings:
    return HashingEmbeddings()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of a real vLLM server with the default model, one per test session.

    $RAG_TEST_LLM_BASE_URL reuses an already running server (CI starts none itself: the fixture
    does). The foundation issue fills in the managed start/stop below.
    """
    external = os.environ.get("RAG_TEST_LLM_BASE_URL")
    if external:
        yield external
        return
    from rag_app import server

    data_dir = Path(os.environ.get("RAG_TEST_DATA_DIR") or tmp_path_factory.mktemp("vllm-data"))
    settings = Settings(data_dir=data_dir, llm_port=int(os.environ.get("RAG_TEST_LLM_PORT", "8765")))
    status = server.serve(settings)
    try:
        yield status.base_url
    finally:
        server.stop(settings)
