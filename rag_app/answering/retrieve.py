"""Retrieval: question -> hits, dense + BM25 candidates fused by reciprocal rank fusion (+ MMR)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rag_app.records import Chunk, Hit
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from ingest.kb import KnowledgeBase

Ranked = list[tuple[Chunk, float]]


def fuse(dense: Ranked, keyword: Ranked, rrf_k: int = 60) -> list[Hit]:
    """Reciprocal rank fusion of two ranked lists; each hit keeps both retrievers' scores and ranks.

    RRF needs no score calibration between cosine and BM25 (SEE: Cormack et al. 2009).
    """
    fields: dict[str, dict[str, float | int]] = {}
    chunks: dict[str, Chunk] = {}
    for name, ranked in (("dense", dense), ("keyword", keyword)):
        for rank, (chunk, score) in enumerate(ranked, start=1):
            entry = fields.setdefault(chunk.chunk_id, {"score": 0.0})
            chunks.setdefault(chunk.chunk_id, chunk)
            if f"{name}_rank" in entry:  # a duplicate within one list counts once
                continue
            entry[f"{name}_score"] = float(score)
            entry[f"{name}_rank"] = rank
            entry["score"] = float(entry["score"]) + 1.0 / (rrf_k + rank)
    hits = [Hit(chunk=chunks[cid], **values) for cid, values in fields.items()]  # type: ignore[arg-type]
    # Ties (same fused score) are broken by the dense score, then by the chunk id (stable order).
    hits.sort(key=lambda h: (-h.score, -(h.dense_score or -1.0), h.chunk.chunk_id))
    return hits


def mmr(hits: list[Hit], vectors: np.ndarray, query: np.ndarray, k: int, lam: float) -> list[Hit]:
    """Maximal marginal relevance: trade relevance to the query against redundancy with picks."""
    if not hits:
        return []
    relevance = vectors @ query
    chosen: list[int] = []
    left = list(range(len(hits)))
    while left and len(chosen) < k:
        if chosen:
            redundancy = (vectors[left] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        scores = lam * relevance[left] - (1 - lam) * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return [hits[i] for i in chosen]


def _normalised(embeddings: Embeddings, texts: list[str]) -> np.ndarray:
    matrix = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, 1e-12))


def diversify(
    question: str, hits: list[Hit], embeddings: Embeddings, k: int, lam: float
) -> list[Hit]:
    """MMR over the fused candidates, using the knowledge base's embedding model."""
    if len(hits) <= 1:
        return hits[:k]
    vectors = _normalised(embeddings, [h.chunk.text for h in hits])
    query = _normalised(embeddings, [question])[0]
    return mmr(hits, vectors, query, k, lam)


def retrieve(
    question: str,
    kb: KnowledgeBase,
    settings: Settings,
    k: int | None = None,
    source: str | None = None,
) -> list[Hit]:
    """The top-k passages for a question: dense and BM25 candidates, RRF-fused, optionally MMR'd."""
    k = k or settings.top_k
    if not question.strip():
        return []
    fetch = max(settings.fetch_k, k)
    dense, keyword = kb.hybrid_search(question, fetch, source=source)
    if not dense and not keyword:
        return []
    hits = fuse(dense, keyword, settings.rrf_k)
    if settings.use_mmr:
        return diversify(question, hits, kb.embeddings, k, settings.mmr_lambda)
    return hits[:k]
