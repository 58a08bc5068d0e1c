"""Killing `rag ingest` (SIGKILL) mid-way leaves a KB that opens and answers as before; a re-run
completes the work with the right counts."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_paths
from rag_app.settings import Settings
from tests.conftest import SAMPLES_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORDS = [
    "harbour",
    "river",
    "granite",
    "orchard",
    "ferry",
    "tower",
    "bridge",
    "valley",
    "engineer",
    "season",
    "timber",
    "market",
    "winter",
    "summer",
    "keeper",
    "lantern",
    "railway",
    "viaduct",
    "quarry",
    "village",
    "festival",
    "estuary",
    "island",
    "coast",
]


def write_corpus(folder: Path, files: int, paragraphs: int, words: int) -> None:
    rng = random.Random(7)
    folder.mkdir(parents=True)
    for i in range(files):
        body = "\n\n".join(
            f"Report {i} part {j}. " + " ".join(rng.choice(WORDS) for _ in range(words))
            for j in range(paragraphs)
        )
        (folder / f"report_{i:03d}.txt").write_text(body)


def catalog_count(kb_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{kb_dir / 'catalog.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    except sqlite3.Error:
        return 0


def index_matches_catalog(kb: KnowledgeBase) -> bool:
    import faiss

    from ingest.faiss_store import FaissStore

    assert isinstance(kb.index, FaissStore)
    in_index = set(faiss.vector_to_array(kb.index.index.id_map).tolist())
    return in_index == set(kb.catalog.all_ids().tolist())


def test_kill_mid_ingest_then_rerun(tmp_path: Path) -> None:
    # Small chunks: many write batches from little embedding work, so the kill lands mid-way.
    settings = Settings(data_dir=tmp_path / "data", chunk_size=32, chunk_overlap=4)
    root = tmp_path / "docs"
    shutil.copytree(SAMPLES_DIR, root / "samples")
    kb = open_kb("crash", settings, create=True)
    ingest_paths([root], kb)
    before = kb.dense_search("Who built the Harrow Point Lighthouse?", 3)
    base_count = kb.count()
    kb.close()

    write_corpus(root / "bulk", files=30, paragraphs=6, words=60)  # ~500 chunks, 2+ batches
    env = {**os.environ, "RAG_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1"}
    env |= {"RAG_CHUNK_SIZE": "32", "RAG_CHUNK_OVERLAP": "4", "RAG_EMBEDDING_BATCH_SIZE": "16"}
    rag = Path(sys.executable).parent / "rag"
    proc = subprocess.Popen(
        [str(rag), "ingest", str(root), "--kb", "crash", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 400
    while catalog_count(settings.kb_dir("crash")) <= base_count:
        assert proc.poll() is None, "ingest finished before it could be killed"
        assert time.monotonic() < deadline, "ingest made no progress"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup handlers run
    proc.wait()

    kb = open_kb("crash", settings)
    partial = kb.count()
    assert partial > base_count
    assert index_matches_catalog(kb)  # the index was reconciled with the catalog on open
    after = kb.dense_search("Who built the Harrow Point Lighthouse?", 3)
    assert [c.chunk_id for c, _ in after] == [c.chunk_id for c, _ in before]
    assert kb.keyword_search("Margaret Ellery", 1)[0][0].source.endswith("lighthouse.md")

    summary = ingest_paths([root], kb)
    stored = len(kb.sources())
    assert summary.failed == [] and stored == 5 + 30 and base_count < partial < kb.count()
    assert summary.unchanged + summary.added == stored and summary.added > 0
    assert kb.count() == sum(s.chunks for s in kb.sources()) and index_matches_catalog(kb)
    assert ingest_paths([root], kb).unchanged == stored
