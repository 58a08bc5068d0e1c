"""Retrieval: reciprocal rank fusion, MMR, and hybrid retrieval over a real (fake-embedded) KB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.kb import open_kb
from ingest.pipeline import ingest_texts
from rag_app.answering.retrieve import fuse, mmr, retrieve
from rag_app.records import Chunk, Hit
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings


def chunk(cid: str, text: str = "") -> Chunk:
    return Chunk(chunk_id=cid, text=text or cid, source=f"/{cid}.txt", doc_hash="h", start=0, end=1)


def test_fuse_rewards_agreement_and_keeps_both_scores() -> None:
    a, b, c = chunk("a"), chunk("b"), chunk("c")
    hits = fuse([(a, 0.9), (b, 0.8)], [(b, 12.0), (c, 7.0)], rrf_k=60)
    assert [h.chunk.chunk_id for h in hits] == ["b", "a", "c"]
    top = hits[0]
    assert (top.dense_score, top.dense_rank, top.keyword_score, top.keyword_rank) == (
        0.8,
        2,
        12.0,
        1,
    )
    assert hits[1].keyword_score is None and hits[2].dense_score is None
    assert top.score == pytest.approx(1 / 62 + 1 / 61)


def test_fuse_of_empty_lists_is_empty() -> None:
    assert fuse([], []) == []


def test_mmr_skips_a_near_duplicate() -> None:
    hits = [Hit(chunk=chunk(c), score=1.0) for c in "abc"]
    vectors = np.array([[1.0, 0.0], [0.999, 0.045], [0.6, 0.8]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picked = mmr(hits, vectors, np.array([1.0, 0.0]), k=2, lam=0.3)
    assert [h.chunk.chunk_id for h in picked] == ["a", "c"]


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", top_k=2, fetch_k=5)
    base = open_kb("t", settings=settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts(
        [
            ("bakery", "The Old Mill Bakery sells rye bread and opened in 1952."),
            ("lighthouse", "The Harbor Point Lighthouse was built by Elena Marsh in 1887."),
            ("river", "The river Tamsin is forty kilometres long and flows north."),
        ],
        base,
    )
    return base


def test_retrieve_hybrid_filters_and_limits(kb) -> None:  # type: ignore[no-untyped-def]
    hits = retrieve("Who built the Harbor Point Lighthouse?", kb, kb.settings)
    assert len(hits) == 2
    assert "lighthouse" in hits[0].chunk.source
    assert hits[0].dense_score is not None and hits[0].keyword_score is not None
    only = retrieve("Lighthouse bread river", kb, kb.settings, k=3, source=hits[0].chunk.source)
    assert {h.chunk.source for h in only} == {hits[0].chunk.source}


def test_retrieve_with_mmr_and_blank_question(kb) -> None:  # type: ignore[no-untyped-def]
    settings = kb.settings.model_copy(update={"use_mmr": True})
    hits = retrieve("bakery bread lighthouse", kb, settings, k=3)
    assert len({h.chunk.chunk_id for h in hits}) == len(hits) == 3
    assert retrieve("   ", kb, settings) == []
