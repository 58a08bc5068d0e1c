"""Hybrid retrieval benchmark: answering.retrieve.retrieve over a synthetic 10k/100k-chunk KB.

Chunk texts are 3 sentences sampled from SciFact abstracts; their vectors are the normalised sum
of the 3 sentences' real MiniLM vectors (embedding 100k chunks on 2 cores would take an hour).
Queries are real SciFact claims, embedded by the KB's model at query time as in production.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.common import latency_summary, library_threads, time_calls

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "scifact"
SENTENCES_PER_CHUNK = 3
CHUNKS_PER_DOC = 40
POOL = 2000  # distinct sentences embedded for real
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def scifact_sentences(limit: int, data_dir: Path = SCIFACT) -> list[str]:
    """The first `limit` sentences (40-400 chars) of SciFact abstracts."""
    out: list[str] = []
    with open(data_dir / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            out += [s for s in SENTENCE_END.split(text) if 40 <= len(s) <= 400]
            if len(out) >= limit:
                break
    return out[:limit]


def scifact_claims(limit: int, data_dir: Path = SCIFACT) -> list[str]:
    with open(data_dir / "queries.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh][:limit]


def synthetic_writes(n: int, pool: list[str], vectors: np.ndarray, seed: int) -> list[Any]:
    """DocumentWrites for n chunks (40 per document) recombined from the sentence pool."""
    from ingest.catalog import DocumentRow
    from ingest.kb import DocumentWrite
    from rag_app.records import Chunk

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), (n, SENTENCES_PER_CHUNK))
    chunk_vectors = vectors[picks].sum(axis=1)
    chunk_vectors /= np.linalg.norm(chunk_vectors, axis=1, keepdims=True)
    writes = []
    for doc_start in range(0, n, CHUNKS_PER_DOC):
        source = f"synthetic/doc{doc_start // CHUNKS_PER_DOC:06d}.txt"
        digest = hashlib.sha256(source.encode()).hexdigest()
        chunks, offset = [], 0
        for pos, row in enumerate(range(doc_start, min(n, doc_start + CHUNKS_PER_DOC))):
            text = " ".join(pool[i] for i in picks[row])
            chunks.append(
                Chunk(
                    chunk_id=f"{digest[:16]}-{pos}",
                    text=text,
                    source=source,
                    doc_hash=digest,
                    start=offset,
                    end=offset + len(text),
                    position=pos,
                )
            )
            offset += len(text) + 1
        row_ = DocumentRow(source, digest, "bench", len(chunks), "2026-01-01T00:00:00+00:00")
        writes.append(
            DocumentWrite(row_, chunks, chunk_vectors[doc_start : doc_start + len(chunks)])
        )
    return writes


def build_writes(n: int, pool_size: int = POOL, seed: int = 0) -> list[Any]:
    """Embed a SciFact sentence pool with the configured model and recombine it into n chunks."""
    from ingest.embed import embed_texts, load_embedder
    from rag_app.settings import Settings

    pool = scifact_sentences(pool_size)
    with library_threads(torch_n=1):  # setup, not measured; robust when the CPU is shared
        vectors = embed_texts(load_embedder(Settings()), pool)
    return synthetic_writes(n, pool, vectors, seed)


def build_kb(n: int, data_dir: Path, pool: list[str], vectors: np.ndarray, seed: int) -> Any:
    """A FAISS+SQLite KB of n synthetic chunks written through the KB's own write path."""
    from ingest.embed import load_embedder
    from ingest.kb import open_kb
    from rag_app.settings import Settings

    settings = Settings(data_dir=data_dir)
    model = load_embedder(settings)
    # No text->vector cache: every stage below repeats the same claims, and a user's next
    # question is new; cached, "embed query" would time a dictionary lookup.
    uncached = model.with_cache(0)
    kb = open_kb(f"bench{n}", settings, create=True, embeddings=uncached)
    writes = synthetic_writes(n, pool, vectors, seed)
    batch = 250  # documents per catalog transaction (10k chunks)
    with kb.writer_lock():
        for start in tqdm(range(0, len(writes), batch), desc=f"KB {n:,}", unit="batch"):
            kb.write_documents(writes[start : start + batch])
        kb.persist()
    return kb


def all_words_search(kb: Any, query: str, k: int) -> list[Any]:
    """Keyword search as it was before stopwords were dropped from the FTS5 query."""
    from ingest.catalog import FTS_TERM

    terms = dict.fromkeys(t.lower() for t in FTS_TERM.findall(query))
    match = " OR ".join(f'"{t}"' for t in terms)
    sql = (
        "SELECT c.id, bm25(chunks_fts) AS s FROM chunks_fts JOIN chunks c "
        "ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?"
    )
    with kb.catalog.lock:
        return kb.catalog.conn.execute(sql, (match, k)).fetchall()  # type: ignore[no-any-return]


def _stage_rows(n: int, kb: Any, claims: list[str], build_s: float) -> list[dict[str, Any]]:
    from ingest.embed import embed_texts
    from ingest.faiss_store import is_hnsw
    from rag_app.answering.retrieve import retrieve

    fetch = kb.settings.fetch_k
    vectors = embed_texts(kb.embeddings, claims)
    stages = {
        "embed query (MiniLM)": (lambda q: embed_texts(kb.embeddings, [q]), claims),
        f"vector search (top {fetch})": (lambda v: kb.index.search_vector(v, fetch), list(vectors)),
        # before ingest/catalog.fts_query dropped stopwords: every word OR-ed, so FTS5 scored
        # nearly every row for words that carry almost no BM25 weight
        "BM25 all words (before)": (lambda q: all_words_search(kb, q, fetch), claims),
        f"BM25 keyword_search (top {fetch})": (lambda q: kb.keyword_search(q, fetch), claims),
        "retrieve() total": (lambda q: retrieve(q, kb, kb.settings), claims),
        "embed query, 1 torch thread": (lambda q: embed_texts(kb.embeddings, [q]), claims),
        "retrieve() total, 1 torch thread": (lambda q: retrieve(q, kb, kb.settings), claims),
    }
    rows = []
    for stage, (fn, inputs) in stages.items():
        with library_threads(torch_n=1 if "1 torch thread" in stage else None):
            lat = latency_summary(time_calls(fn, inputs))
        rows.append(
            {
                "size": n,
                "stage": stage,
                "p50_ms": lat["p50_ms"],
                "p95_ms": lat["p95_ms"],
                "mean_ms": lat["mean_ms"],
                "kb_build_s": build_s,
                "index": "HNSW" if is_hnsw(kb.index.index) else "exact",
            }
        )
    return rows


def hybrid_rows(sizes: list[int], n_queries: int, seed: int = 0) -> list[dict[str, Any]]:
    """Per-stage p50/p95 of hybrid retrieval at each KB size."""
    from ingest.embed import embed_texts, load_embedder
    from rag_app.settings import Settings

    print(f"hybrid: embedding {POOL} SciFact sentences with the KB's model ...", flush=True)
    pool = scifact_sentences(POOL)
    with library_threads(torch_n=1):  # setup, not measured; robust when the CPU is shared
        vectors = embed_texts(load_embedder(Settings()), pool)
    claims = scifact_claims(n_queries)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        for n in sizes:
            start = time.perf_counter()
            kb = build_kb(n, Path(tmp), pool, vectors, seed)
            build_s = time.perf_counter() - start
            rows += _stage_rows(n, kb, claims, build_s)
            rows += _reingest_rows(n, kb, pool, vectors, build_s)
            kb.close()
    return rows


def _reingest_rows(
    n: int, kb: Any, pool: list[str], vectors: np.ndarray, build_s: float
) -> list[dict[str, Any]]:
    """Re-ingesting one changed document (its 40 chunks out, 40 new in), as `rag ingest` does.

    "before" forces the old behaviour for HNSW: every delete rebuilt the graph from the stored
    vectors. "now": deletes are masked until a fifth of the graph is dead (MAX_DEAD_SHARE).
    """
    from ingest import faiss_store

    rows = []
    for label, share in (("before: rebuild on delete", 0.0), ("now: masked delete", None)):
        saved = faiss_store.MAX_DEAD_SHARE
        if share is not None:
            faiss_store.MAX_DEAD_SHARE = share
        try:
            reps = 2 if share is not None else 5
            changes = [
                synthetic_writes(CHUNKS_PER_DOC, pool, vectors, 100 + i) for i in range(reps)
            ]
            lat = latency_summary(time_calls(lambda w: kb.write_documents(w), changes, warmup=0))
        finally:
            faiss_store.MAX_DEAD_SHARE = saved
        rows.append(
            {
                "size": n,
                "stage": f"re-ingest 1 changed document ({label})",
                "p50_ms": lat["p50_ms"],
                "p95_ms": lat["p95_ms"],
                "mean_ms": lat["mean_ms"],
                "kb_build_s": build_s,
                "index": "HNSW" if faiss_store.is_hnsw(kb.index.index) else "exact",
            }
        )
    return rows
