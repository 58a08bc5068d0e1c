"""Synthetic embedding-like vectors and the FAISS indexes bench/retrieve.py compares."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import library_threads

# faiss's bundled stubs miss most of the SWIG API (downcast_index, hnsw fields, ...).
faiss: Any = importlib.import_module("faiss")

DIM = 384  # all-MiniLM-L6-v2
CHUNKS_PER_DOC = 40
# Shape of the mixture: a chunk = topic centre + document offset + low-rank "what this chunk is
# about" + isotropic noise (uniform random vectors would make every neighbour equidistant, a
# pathological case for any approximate index). Calibrated on 8,000 real MiniLM vectors of
# SciFact sentences: top-1/top-10 neighbour cosine 0.569/0.457 (real 0.565/0.458), HNSW
# (efConstruction=16, efSearch=16) recall@10 0.665 at M=8 and 0.862 at M=16 (real 0.714/0.843).
DOC_SCALE = 0.8
TOPIC_RANK = 32
LOWRANK_SCALE = 1.5
NOISE_SCALE = 0.8


def clustered_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """n L2-normalised float32 vectors from a topic -> document -> chunk Gaussian mixture."""
    rng = np.random.default_rng(seed)
    n_topics = max(16, round(n**0.5 / 4))
    n_docs = -(-n // CHUNKS_PER_DOC)
    topics = rng.standard_normal((n_topics, dim), dtype=np.float32)
    docs = rng.standard_normal((n_docs, dim), dtype=np.float32) * DOC_SCALE
    docs += topics[rng.integers(0, n_topics, n_docs)]
    basis = rng.standard_normal((TOPIC_RANK, dim), dtype=np.float32)
    basis *= LOWRANK_SCALE / np.sqrt(TOPIC_RANK)
    doc_of = rng.integers(0, n_docs, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # blocks keep the temporaries small at 1M
        stop = min(n, start + 100_000)
        block = rng.standard_normal((stop - start, TOPIC_RANK), dtype=np.float32) @ basis
        block += rng.standard_normal((stop - start, dim), dtype=np.float32) * NOISE_SCALE
        block += docs[doc_of[start:stop]]
        out[start:stop] = block
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def corpus_and_queries(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A corpus of n vectors and n_queries held-out vectors from the same mixture."""
    every = clustered_vectors(n + n_queries, seed=seed)
    picked = np.random.default_rng(seed + 1).choice(len(every), n_queries, replace=False)
    keep = np.ones(len(every), dtype=bool)
    keep[picked] = False
    return np.ascontiguousarray(every[keep]), np.ascontiguousarray(every[picked])


def hnsw_of(index: Any) -> Any | None:
    """The HNSW inside an index (through an IndexIDMap wrapper), or None for exact indexes."""
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    inner = faiss.downcast_index(inner)
    return inner if isinstance(inner, faiss.IndexHNSW) else None


def index_bytes(index: Any) -> int:
    """Bytes the index holds: vectors, HNSW links and id maps (analytic, no serialisation)."""
    total = 0
    if hasattr(index, "id_map"):
        total += index.id_map.size() * 8
        index = faiss.downcast_index(index.index)
    hnsw = hnsw_of(index)
    if hnsw is not None:
        h = hnsw.hnsw
        total += h.neighbors.size() * 4 + h.offsets.size() * 8 + h.levels.size() * 4
        index = faiss.downcast_index(hnsw.storage)
    return total + int(index.ntotal) * int(index.code_size)


def make_hnsw(dim: int, m: int, ef_construction: int) -> Any:
    index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    return index


def set_ef_search(index: Any, ef: int) -> None:
    hnsw = hnsw_of(index)
    if hnsw is None:
        raise ValueError("efSearch only applies to HNSW indexes")
    hnsw.hnsw.efSearch = ef


BUILD_THREADS = faiss.omp_get_max_threads()


@dataclass
class Built:
    index: Any
    build_s: float
    rss_delta: int


def add_all(index: Any, base: np.ndarray) -> Built:
    """Add every vector (with ids 0..n-1 when the index maps ids), timing and RSS delta."""
    from bench.common import rss_bytes

    before, start = rss_bytes(), time.perf_counter()
    with library_threads(faiss_n=BUILD_THREADS):
        if hasattr(index, "id_map"):
            index.add_with_ids(base, np.arange(len(base), dtype=np.int64))
        else:
            index.add(base)
    return Built(index, time.perf_counter() - start, rss_bytes() - before)


def search_ids(index: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """Batched search (all cores): ground truth and recall, not latency."""
    with library_threads(faiss_n=BUILD_THREADS):
        return np.asarray(index.search(queries, k)[1])


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k ids among the found top-k ids (recall@k, k = columns)."""
    if found.shape != truth.shape:
        raise ValueError(f"shapes differ: found {found.shape}, truth {truth.shape}")
    k = truth.shape[1]
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / k)
