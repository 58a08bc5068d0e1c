"""`rag kb copy NAME --to postgres` on a real FAISS KB and a real Postgres: the same documents,
chunks and vectors (byte for byte: nothing re-embedded), the same search results, the old
folder kept as a backup; refusals are one line and copy nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from ingest.catalog import Catalog
from ingest.kb import list_kbs, open_kb
from ingest.pg_store import kb_names
from ingest.pipeline import ingest_texts
from rag_app.records import Chunk
from tests.conftest import REPO_ROOT
from tests.fakes import HashingEmbeddings

pytestmark = pytest.mark.integration

DOCS = {
    "bridge": "The Kestrel Bridge is a suspension bridge, 412 metres long, opened in 1931.",
    "orchard": "The Greywater orchard has 340 apple trees and 85 pear trees.",
    "ferry": "The Tolwen ferry crossing takes fourteen minutes in calm weather.",
}


def rag(data_dir: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(data_dir), "RAG_DATABASE_URL": url})
    return subprocess.run([sys.executable, "-m", "rag_app.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def ranked(hits: list[tuple[Chunk, float]]) -> list[tuple[str, float]]:
    """(chunk id, score) best first; chunks with equal scores (here the two unrelated documents,
    both 0.0) come in no defined order from either store, so ties are put in id order."""
    pairs = [(chunk.chunk_id, round(score, 5)) for chunk, score in hits]
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def test_copy_moves_chunks_and_vectors_without_re_embedding(tmp_path: Path, pg_url: str) -> None:
    from rag_app.settings import Settings

    data = tmp_path / "data"
    embedded = Settings(data_dir=data)  # the default store: FAISS + SQLite
    base = open_kb("notes", embedded, create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS.items(), base)
    before = ranked(base.dense_search("apple trees", 3))
    count = base.count()
    base.close()

    copied = rag(data, pg_url, "kb", "copy", "notes", "--to", "postgres")
    assert copied.returncode == 0, copied.stderr
    assert f"{len(DOCS)} documents, {count} chunks" in copied.stdout
    (backup,) = (data / "backups").iterdir()
    assert (backup / "catalog.sqlite").is_file()  # the old KB is kept, outside the KB list

    pg = Settings(data_dir=data, store="postgres", database_url=SecretStr(pg_url))
    assert list_kbs(pg) == ["notes"] and kb_names(pg_url) == ["notes"]
    moved = open_kb("notes", pg, embeddings=HashingEmbeddings())
    assert moved.manifest.store == "postgres" and moved.count() == count
    assert ranked(moved.dense_search("apple trees", 3)) == before
    old = Catalog(backup / "catalog.sqlite")
    for doc in old.documents():
        vectors, rows = old.vectors(old.source_ids(doc.source))
        stored = moved.catalog.dense_search(vectors[0], 1, doc.source)  # type: ignore[attr-defined]
        assert stored[0][0].chunk_id == rows[0].chunk_id and stored[0][1] == pytest.approx(1.0)
        assert moved.catalog.document(doc.source) == doc
    old.close()
    assert moved.keyword_search("ferry crossing", 1)[0][0].source == "ferry"

    again = rag(data, pg_url, "kb", "copy", "notes")
    assert again.returncode != 0 and "already in Postgres" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_copy_refuses_a_name_the_database_already_has(tmp_path: Path, pg_url: str) -> None:
    from rag_app.settings import Settings

    pg = Settings(data_dir=tmp_path / "other", store="postgres", database_url=SecretStr(pg_url))
    open_kb("notes", pg, create=True, embeddings=HashingEmbeddings()).close()
    data = tmp_path / "data"
    base = open_kb("notes", Settings(data_dir=data), create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS.items(), base)
    base.close()
    refused = rag(data, pg_url, "kb", "copy", "notes")
    assert refused.returncode != 0 and "already has a knowledge base notes" in refused.stderr
    assert (Settings(data_dir=data).kb_dir("notes") / "catalog.sqlite").is_file()  # untouched
    assert not (data / "backups").exists()
