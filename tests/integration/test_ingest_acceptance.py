"""Acceptance of `rag ingest` / `rag search` / `rag kb` through the real CLI with real MiniLM."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.kb import open_kb
from rag_app.cli import app
from rag_app.errors import KnowledgeBaseError
from rag_app.settings import Settings, get_settings
from tests.conftest import SAMPLES_DIR
from tests.ingest_docs import write_bad_inputs

pytestmark = pytest.mark.integration


@pytest.fixture
def rag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # noqa: ANN201
    """Run `rag ...` in-process (the embedding model loads once) against a temp data dir."""
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def run(*args: str, code: int = 0, **env: str):  # noqa: ANN202
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()  # settings are read from the environment once per process
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    yield run
    get_settings.cache_clear()


def ingest_json(rag, *args: str, code: int = 0, **env: str) -> dict:  # noqa: ANN001
    return json.loads(rag("ingest", *args, "--json", code=code, **env).stdout)


def test_edit_delete_and_prune(rag, tmp_path: Path) -> None:  # noqa: ANN001
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLES_DIR, docs)
    first = ingest_json(rag, str(docs), "--kb", "acc")
    # samples/docs holds the five documents and nothing else (its README stays outside)
    assert (first["added"], first["skipped"], first["failed"]) == (5, [], [])
    bridge = docs / "kestrel_bridge.txt"
    bridge.write_text(
        bridge.read_text().replace("412 metres long", "painted with violet zebra stripes")
    )
    (docs / "alder_viaduct.html").unlink()
    second = ingest_json(rag, str(docs), "--kb", "acc", "--prune")
    counts = [second[k] for k in ("added", "changed", "unchanged", "removed")]
    assert counts == [0, 1, 3, 1] and second["failed"] == []

    found = json.loads(rag("search", "violet zebra stripes", "--kb", "acc", "--json").stdout)
    top = found["hits"][0]["chunk"]
    assert Path(top["source"]).name == "kestrel_bridge.txt" and "violet zebra" in top["text"]
    assert not any("412 metres" in h["chunk"]["text"] for h in found["hits"])
    viaduct = json.loads(
        rag("search", "Alder Viaduct red brick arches", "--kb", "acc", "--json").stdout
    )
    assert "alder_viaduct.html" not in {Path(h["chunk"]["source"]).name for h in viaduct["hits"]}

    # exactly the chunks of the current files: same as a fresh knowledge base of the folder
    ingest_json(rag, str(docs), "--kb", "fresh")
    settings = Settings(data_dir=tmp_path / "data")
    acc, fresh = open_kb("acc", settings), open_kb("fresh", settings)
    texts = {c.text for s in acc.sources() for c in acc.get_chunks(_ids(acc, s.source))}
    assert texts == {
        c.text for s in fresh.sources() for c in fresh.get_chunks(_ids(fresh, s.source))
    }
    assert acc.count() == fresh.count() == len(texts)
    assert not any("412 metres long" in t for t in texts)


def _ids(kb, source: str) -> list[str]:  # noqa: ANN001
    return [row.chunk_id for row in kb.catalog.by_ids(kb.catalog.source_ids(source)).values()]


def test_bad_inputs_each_reported(rag, tmp_path: Path) -> None:  # noqa: ANN001
    docs = tmp_path / "docs"
    expected = write_bad_inputs(docs)
    shutil.copy(SAMPLES_DIR / "harrow_point_lighthouse.md", docs)
    (docs / "legacy.txt").write_bytes("Le phare a été construit en 1874, garçon.".encode("cp1252"))
    missing = tmp_path / "no-such-dir"
    out = ingest_json(rag, str(docs), str(missing), "--kb", "bad", RAG_MAX_FILE_MB="0.1")
    reasons = {Path(f["source"]).name: f["reason"] for f in out["failed"]}
    assert set(reasons) == {*expected, missing.name}
    for name, word in expected.items():
        assert word in reasons[name]
    assert out["added"] == 2  # the lighthouse and the cp1252 file, decoded
    hit = json.loads(rag("search", "phare construit garçon", "--kb", "bad", "--json").stdout)
    assert "garçon" in hit["hits"][0]["chunk"]["text"]
    # nothing readable at all -> exit code 1, still one JSON summary
    nothing = ingest_json(rag, str(missing), "--kb", "bad", code=1)
    assert nothing["failed"] == [{"source": str(missing), "reason": "path does not exist"}]


def test_kb_commands(rag, tmp_path: Path) -> None:  # noqa: ANN001
    ingest_json(rag, str(SAMPLES_DIR / "kestrel_bridge.txt"), "--kb", "one")
    assert json.loads(rag("kb", "list", "--json").stdout) == ["one"]
    stats = json.loads(rag("kb", "stats", "one", "--json").stdout)
    assert (stats["documents"], stats["store"], stats["dimension"]) == (1, "faiss", 384)
    assert "all-MiniLM-L6-v2" in stats["embedding_model"]
    with pytest.raises(KnowledgeBaseError, match="does not exist"):  # main() prints it, exit 1
        rag("search", "x", "--kb", "two")
    rag("kb", "remove", "one", "--yes")
    assert json.loads(rag("kb", "list", "--json").stdout) == []
