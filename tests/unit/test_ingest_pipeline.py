"""Unit tests for ingest.pipeline + ingest.kb with fake embeddings: incremental, prune, failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.kb import list_kbs, open_kb, remove_kb
from ingest.pipeline import ingest_paths, ingest_texts
from rag_app.errors import KnowledgeBaseError
from rag_app.settings import Settings
from tests.conftest import SAMPLES_DIR
from tests.fakes import HashingEmbeddings
from tests.ingest_docs import write_bad_inputs


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("harrow_point_lighthouse.md", "kestrel_bridge.txt", "alder_viaduct.html"):
        shutil.copy(SAMPLES_DIR / name, docs / name)
    (docs / "notes.md").write_text("# Notes\n\nThe old ferry was named Curlew.\n")
    return docs


def open_fake(settings: Settings, name: str = "t", **kw: object):  # noqa: ANN201
    return open_kb(name, settings, create=True, embeddings=HashingEmbeddings(**kw))  # type: ignore[arg-type]


def test_edit_delete_prune_leaves_exactly_current_chunks(settings: Settings, folder: Path) -> None:
    kb = open_fake(settings)
    first = ingest_paths([folder], kb)
    assert (first.added, first.failed, first.skipped) == (4, [], [])
    (folder / "notes.md").write_text("# Notes\n\nThe new ferry is named Saltmarsh.\n")
    (folder / "kestrel_bridge.txt").unlink()
    second = ingest_paths([folder], kb, prune=True)
    assert (second.added, second.changed, second.unchanged, second.removed) == (0, 1, 2, 1)
    assert {Path(s.source).name for s in kb.sources()} == {
        "harrow_point_lighthouse.md",
        "alder_viaduct.html",
        "notes.md",
    }
    assert sum(s.chunks for s in kb.sources()) == kb.count()
    assert kb.keyword_search("Saltmarsh", 3) and not kb.keyword_search("Curlew", 3)
    assert not kb.keyword_search("Kestrel", 3)
    dense = kb.dense_search("new ferry named Saltmarsh", 1)[0][0]
    assert "Saltmarsh" in dense.text


def test_unchanged_skip_and_chunker_change_rechunks(settings: Settings, folder: Path) -> None:
    kb = open_fake(settings)
    ingest_paths([folder], kb)
    assert ingest_paths([folder], kb).unchanged == 4
    kb.settings = settings.model_copy(update={"chunk_size": 20, "chunk_overlap": 4})
    again = ingest_paths([folder], kb)
    assert again.changed == 4 and kb.manifest.chunk_size == 20
    assert open_fake(settings).manifest.chunk_size == 20


def test_bad_inputs_reported_rest_ingested(tmp_path: Path, folder: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_file_mb=0.1)
    expected = write_bad_inputs(folder)
    (folder / "legacy.txt").write_bytes("Le garçon a mangé une crème brûlée.".encode("cp1252"))
    (folder / "image.png").write_bytes(b"\x89PNG")
    kb = open_fake(settings)
    summary = ingest_paths([folder, tmp_path / "missing-folder"], kb)
    reasons = {Path(f.source).name: f.reason for f in summary.failed}
    for name, word in expected.items():
        assert word in reasons.pop(name), name
    assert reasons == {"missing-folder": "path does not exist"}
    assert [Path(s.source).name for s in summary.skipped] == ["image.png"]
    assert summary.added == 5  # 4 good documents + the cp1252 one
    assert kb.keyword_search("garçon crème", 1)[0][0].text.startswith("Le garçon")


def test_ingest_texts_and_neighbours(settings: Settings) -> None:
    kb = open_fake(settings)
    long = " ".join(f"Sentence number {i} is here." for i in range(200))
    summary = ingest_texts([("doc-1", long), ("doc-2", "Short text."), ("doc-3", "  ")], kb)
    assert (summary.added, [f.source for f in summary.failed]) == (2, ["doc-3"])
    assert ingest_texts([("doc-2", "Short text.")], kb).unchanged == 1
    chunks = kb.neighbours(kb.keyword_search("number 100", 1)[0][0].chunk_id, window=1)
    assert [c.position for c in chunks] == sorted(c.position for c in chunks)
    assert len(chunks) == 3 and {c.source for c in chunks} == {"doc-1"}
    assert kb.get_chunks([chunks[0].chunk_id, "unknown"]) == [chunks[0]]
    assert kb.remove_source("doc-1") == summary.chunks_written - 1  # doc-2 is one chunk
    assert [s.source for s in kb.sources()] == ["doc-2"]


def test_model_mismatch_missing_kb_and_names(settings: Settings) -> None:
    open_fake(settings, "a")
    with pytest.raises(
        KnowledgeBaseError, match=r"built with fake-hashing \(dim 64\).*rag kb remove a"
    ):
        open_fake(settings, "a", dim=32)
    with pytest.raises(KnowledgeBaseError, match="other-model"):
        open_fake(settings, "a", model_name="other-model")
    with pytest.raises(KnowledgeBaseError, match="does not exist"):
        open_kb("b", settings, embeddings=HashingEmbeddings())
    with pytest.raises(KnowledgeBaseError, match="invalid knowledge base name"):
        open_kb("../x", settings, create=True, embeddings=HashingEmbeddings())
    assert list_kbs(settings) == ["a"]
    assert remove_kb("a", settings) and list_kbs(settings) == []


def test_one_writer_at_a_time(settings: Settings, folder: Path) -> None:
    kb = open_fake(settings)
    with kb.writer_lock(), pytest.raises(KnowledgeBaseError, match="another ingest"):
        ingest_paths([folder], open_fake(settings))
    assert ingest_paths([folder], kb).added == 4  # the lock is released afterwards


def test_same_bytes_under_another_path_are_reported_not_added(
    settings: Settings, folder: Path, tmp_path: Path
) -> None:
    kb = open_fake(settings)
    ingest_paths([folder], kb)
    original = folder / "kestrel_bridge.txt"
    elsewhere = tmp_path / "copies"
    elsewhere.mkdir()
    copy = shutil.copy(original, elsewhere / "kestrel_bridge.txt")
    twin = shutil.copy(original, elsewhere / "twin.txt")  # and a second copy in the same run
    summary = ingest_paths([elsewhere], kb)
    assert (summary.added, summary.failed, summary.chunks_written) == (0, [], 0)
    assert [(d.source, d.same_as) for d in summary.duplicates] == [
        (str(copy), str(original)),
        (str(twin), str(original)),
    ]
    assert summary.duplicates[0].reason == f"already in the KB as {original}"
    assert summary.in_kb() == 2
    assert len(kb.sources()) == 4 and '"same_as"' in summary.model_dump_json()
    # the same path with the same bytes stays the incremental no-op
    assert ingest_paths([original], kb).unchanged == 1


def test_two_new_copies_in_one_run_add_one(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "new"
    docs.mkdir()
    (docs / "a.md").write_text("# Tides\n\nHigh tide is at 06:40.\n")
    shutil.copy(docs / "a.md", docs / "b.md")
    summary = ingest_paths([docs], open_fake(settings))
    assert summary.added == 1
    assert [(Path(d.source).name, Path(d.same_as).name) for d in summary.duplicates] == [
        ("b.md", "a.md")
    ]


def test_a_moved_file_is_ingested_at_its_new_path(
    settings: Settings, folder: Path, tmp_path: Path
) -> None:
    kb = open_fake(settings)
    ingest_paths([folder], kb)
    moved = (folder / "notes.md").rename(tmp_path / "notes.md")
    # the old path is gone: not a duplicate, else pruning it would leave no copy at all
    assert ingest_paths([moved], kb).added == 1
    assert ingest_paths([folder], kb, prune=True).removed == 1
    assert kb.keyword_search("Curlew", 1)[0][0].source == str(moved)


def test_text_records_keep_their_ids_even_when_texts_repeat(settings: Settings) -> None:
    summary = ingest_texts([("q1", "Same passage."), ("q2", "Same passage.")], open_fake(settings))
    assert (summary.added, summary.duplicates) == (2, [])
