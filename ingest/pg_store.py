"""Postgres + pgvector knowledge-base store: catalog, vectors and keyword index in one table.

Each KB is a schema `kb_<id>` (ingest/pg_db.py) holding
- `documents`: one row per source (hash, chunker signature, chunk count, ingest time);
- `chunks`: text, provenance (`metadata` jsonb: source, doc_hash, offsets, page, section, ...),
  `embedding vector(dim)` (L2-normalised, so inner product = cosine, as with FAISS) under an
  HNSW index (vector_ip_ops), and `tsv`, a generated tsvector (english) under a GIN index.
A write is one Postgres transaction that first locks the KB's row in `rag.kbs` (writers of one
KB queue, readers never wait) and bumps its revision: vectors and rows commit together, so
there is no derived index to reconcile and `apply`/`refresh`/`persist` have nothing to do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ingest.catalog import DocumentRow, NewChunk, StoredChunk, fts_terms
from ingest.catalog_store import CatalogVectorStore
from ingest.embed_cache import normalise
from ingest.pg_db import SCHEMA_LOCK, pool
from rag_app.errors import KnowledgeBaseError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool

# Same graph parameters as the FAISS HNSW index (ingest/faiss_store.py).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
TEXT_CONFIG = "english"  # stemming + stopwords, like FTS5's porter tokenizer

KB_SCHEMA = """
CREATE SCHEMA {s};
CREATE TABLE {s}.documents(
  source text PRIMARY KEY, doc_hash text NOT NULL, signature text NOT NULL,
  chunks integer NOT NULL, ingested_at text NOT NULL);
CREATE INDEX ON {s}.documents(doc_hash);
CREATE TABLE {s}.chunks(
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, chunk_id text NOT NULL UNIQUE,
  source text, position integer NOT NULL DEFAULT 0, text text NOT NULL,
  metadata jsonb NOT NULL, embedding vector({dim}),
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('{config}', text)) STORED);
CREATE INDEX ON {s}.chunks(source, position);
CREATE INDEX ON {s}.chunks USING gin(tsv);
CREATE INDEX ON {s}.chunks USING hnsw(embedding vector_ip_ops)
  WITH (m = {m}, ef_construction = {ef});
"""

ROW = "id, chunk_id, text, metadata"


def _dense_select(cols: str, where: str) -> str:
    """Top-k by inner product (HNSW). Params: vector, [source], vector, k."""
    return (
        f"SELECT {cols}, -(embedding <#> %s) FROM {{s}}.chunks "
        f"WHERE embedding IS NOT NULL{where} ORDER BY embedding <#> %s LIMIT %s"
    )


def _keyword_select(cols: str, where: str) -> str:
    """Top-k by ts_rank. Params: tsquery, [source], k (`where` may add its own first)."""
    return (
        f"SELECT {cols}, ts_rank(tsv, q) AS score FROM {{s}}.chunks, "
        f"to_tsquery('{TEXT_CONFIG}', %s) q WHERE tsv @@ q{where} ORDER BY score DESC, id LIMIT %s"
    )


def _search_settings(conn: psycopg.Connection[Any], k: int, source: str | None) -> None:
    """HNSW settings of one search transaction: efSearch >= k; strict order when filtered."""
    conn.execute(f"SET LOCAL hnsw.ef_search = {max(HNSW_EF_SEARCH, int(k))}")
    if source is not None:
        conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")


def _stored(rows: Sequence[Any]) -> list[StoredChunk]:
    return [StoredChunk(int(r[0]), str(r[1]), str(r[2]), dict(r[3])) for r in rows]


def _kb_schema(
    conn: psycopg.Connection[Any], name: str, model: str, dim: int
) -> tuple[str, str, int]:
    """(schema, model, dim) of KB `name`, creating its row and schema on first use."""
    from psycopg import sql

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        row = conn.execute(
            "SELECT id, embedding_model, dimension FROM rag.kbs WHERE name = %s", (name,)
        ).fetchone()
        if row is not None:
            return f"kb_{row[0]}", str(row[1]), int(row[2])
        made = conn.execute(
            "INSERT INTO rag.kbs(name, embedding_model, dimension) VALUES (%s, %s, %s) "
            "RETURNING id",
            (name, model, dim),
        ).fetchone()
        assert made is not None
        schema = f"kb_{made[0]}"
        ddl = KB_SCHEMA.format(
            s="{s}", dim=int(dim), config=TEXT_CONFIG, m=HNSW_M, ef=HNSW_EF_CONSTRUCTION
        )
        conn.execute(sql.SQL(ddl).format(s=sql.Identifier(schema)))  # type: ignore[arg-type]
        return schema, model, dim


class PgCatalog:
    """The KbCatalog of one KB in Postgres; safe to share between threads (pooled)."""

    def __init__(self, url: str, name: str, model: str, dim: int) -> None:
        self.pool: ConnectionPool = pool(url)
        self.name = name
        with self.pool.connection() as conn:
            self.schema, stored_model, stored_dim = _kb_schema(conn, name, model, dim)
        if (stored_model, stored_dim) != (model, dim):
            raise KnowledgeBaseError(
                f"knowledge base {name} in the database was built with {stored_model} "
                f"(dim {stored_dim}); current embedding model is {model} (dim {dim}) — "
                f"rebuild with `rag kb remove {name}` then `rag ingest ... --kb {name}`, "
                f"or set RAG_EMBEDDING_MODEL={stored_model}"
            )
        self.dim = dim
        self.last_commit = (0, 0)
        self._local = threading.local()  # the connection of this thread's open transaction

    def _sql(self, text: str) -> sql.Composed:
        """`text` with {s} = this KB's schema (an identifier, never user text)."""
        from psycopg import sql

        return sql.SQL(text).format(s=sql.Identifier(self.schema))  # type: ignore[arg-type]

    def close(self) -> None:
        """The pool is shared by every KB on this database; it closes at exit."""

    # --- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """All-or-nothing write; bumps the KB's revision; one writer per KB at a time."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE rag.kbs SET revision = revision + 1 WHERE name = %s RETURNING revision",
                (self.name,),
            ).fetchone()
            if row is None:
                raise KnowledgeBaseError(
                    f"knowledge base {self.name} was removed from the database while open; "
                    f"ingest again to recreate it"
                )
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None
        self.last_commit = (int(row[0]) - 1, int(row[0]))

    def _tx(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("PgCatalog writes must run inside `with catalog.transaction():`")
        return conn

    def revision(self) -> int:
        rows = self._query("SELECT revision FROM rag.kbs WHERE name = %s", (self.name,), plain=True)
        return int(rows[0][0]) if rows else 0

    # --- writes (inside transaction()) --------------------------------------------------------
    def delete_chunk_ids(self, chunk_ids: Sequence[str]) -> list[tuple[int, str]]:
        rows = self._tx().execute(
            self._sql("DELETE FROM {s}.chunks WHERE chunk_id = ANY(%s) RETURNING id, chunk_id"),
            (list(chunk_ids),),
        )
        return [(int(r[0]), str(r[1])) for r in rows.fetchall()]

    def delete_source(self, source: str) -> list[tuple[int, str]]:
        conn = self._tx()
        rows = conn.execute(
            self._sql("DELETE FROM {s}.chunks WHERE source = %s RETURNING id, chunk_id"),
            (source,),
        ).fetchall()
        conn.execute(self._sql("DELETE FROM {s}.documents WHERE source = %s"), (source,))
        return [(int(r[0]), str(r[1])) for r in rows]

    def insert_chunks(self, chunks: Sequence[NewChunk]) -> list[int]:
        if not chunks:
            return []
        from psycopg.types.json import Jsonb

        vectors = normalise(np.vstack([np.asarray(c.vector, np.float32) for c in chunks]))
        params = [
            (c.chunk_id, c.source, c.position, c.text, Jsonb(c.metadata), vectors[i])
            for i, c in enumerate(chunks)
        ]
        ids: list[int] = []
        with self._tx().cursor() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO {s}.chunks(chunk_id, source, position, text, metadata, "
                    "embedding) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
                ),
                params,
                returning=True,
            )
            while True:
                found = cur.fetchone()
                ids.append(int(found[0]) if found else 0)
                if not cur.nextset():
                    break
        return ids

    def upsert_document(self, doc: DocumentRow) -> None:
        self._tx().execute(
            self._sql(
                "INSERT INTO {s}.documents(source, doc_hash, signature, chunks, ingested_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source) DO UPDATE SET "
                "doc_hash = excluded.doc_hash, signature = excluded.signature, "
                "chunks = excluded.chunks, ingested_at = excluded.ingested_at"
            ),
            tuple(doc),
        )

    # --- reads --------------------------------------------------------------------------------
    def _query(self, text: str, params: Sequence[Any] = (), plain: bool = False) -> list[Any]:
        query: Any = text if plain else self._sql(text)
        conn = getattr(self._local, "conn", None)
        if conn is not None:  # inside this thread's transaction: see its own writes
            return list(conn.execute(query, tuple(params)).fetchall())
        with self.pool.connection() as fresh:
            return list(fresh.execute(query, tuple(params)).fetchall())

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM {s}.chunks")[0][0])

    def documents(self) -> list[DocumentRow]:
        rows = self._query("SELECT * FROM {s}.documents ORDER BY source")
        return [DocumentRow(*r) for r in rows]

    def document(self, source: str) -> DocumentRow | None:
        rows = self._query("SELECT * FROM {s}.documents WHERE source = %s", (source,))
        return DocumentRow(*rows[0]) if rows else None

    def sources_with_hash(self, doc_hash: str) -> list[str]:
        rows = self._query(
            "SELECT source FROM {s}.documents WHERE doc_hash = %s ORDER BY source", (doc_hash,)
        )
        return [str(r[0]) for r in rows]

    def by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        rows = self._query(f"SELECT {ROW} FROM {{s}}.chunks WHERE id = ANY(%s)", ([*ids],))
        return {s.id: s for s in _stored(rows)}

    def by_chunk_ids(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        rows = self._query(
            f"SELECT {ROW} FROM {{s}}.chunks WHERE chunk_id = ANY(%s)", ([*chunk_ids],)
        )
        return {s.chunk_id: s for s in _stored(rows)}

    def neighbours(self, chunk_id: str, window: int) -> list[StoredChunk]:
        rows = self._query(
            f"SELECT {ROW} FROM {{s}}.chunks c WHERE (c.source, c.position) IN ("
            "  SELECT source, p FROM {s}.chunks x, generate_series(x.position - %s, "
            "  x.position + %s) p WHERE x.chunk_id = %s) ORDER BY position",
            (window, window, chunk_id),
        )
        return _stored(rows)

    def source_ids(self, source: str) -> list[int]:
        rows = self._query("SELECT id FROM {s}.chunks WHERE source = %s ORDER BY id", (source,))
        return [int(r[0]) for r in rows]

    def keyword_search(
        self, query: str, k: int, source: str | None = None
    ) -> list[tuple[int, float]]:
        """(id, ts_rank score) best first: any of the query's words (stopwords dropped)."""
        terms = fts_terms(query)
        if not terms or k <= 0:
            return []
        tsquery = " | ".join(f"'{t}'" for t in terms)  # \w+ words: quoting is all they need
        where = "" if source is None else " AND source = %s"
        params: list[Any] = [tsquery, *([source] if source is not None else []), k]
        rows = self._query(_keyword_select("id", where), params)
        return [(int(r[0]), float(r[1])) for r in rows]

    def dense_search(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Top-k rows by cosine (HNSW; strict-order iterative scan when filtered by source)."""
        if k <= 0:
            return []
        query = normalise(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        where = "" if source is None else " AND source = %s"
        params: list[Any] = [query, *([source] if source is not None else []), query, k]
        with self.pool.connection() as conn, conn.transaction():
            _search_settings(conn, k, source)
            rows = conn.execute(self._sql(_dense_select(ROW, where)), params).fetchall()
        return [(s, float(r[4])) for s, r in zip(_stored(rows), rows, strict=True)]

    def hybrid_search(
        self, vector: np.ndarray, query: str, k: int, source: str | None = None
    ) -> tuple[list[tuple[StoredChunk, float]], list[tuple[StoredChunk, float]]]:
        """dense_search and keyword_search (with their rows) in ONE statement, sent in one
        pipelined round trip with its settings: (dense, keyword), each best first."""
        if k <= 0:
            return [], []
        terms = fts_terms(query)
        tsquery = " | ".join(f"'{t}'" for t in terms) if terms else ""
        vec = normalise(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        where = "" if source is None else " AND source = %s"
        only = [source] if source is not None else []
        # the same two SELECTs as dense_search and keyword_search, tagged 0 and 1; the keyword
        # half is switched off (a false parameter) when the question has no searchable word
        text = (
            f"({_dense_select(f'0, {ROW}', where)}) "
            f"UNION ALL ({_keyword_select(f'1, {ROW}', f'{where} AND %s')})"
        )
        params: list[Any] = [vec, *only, vec, k, tsquery or "x", *only, bool(terms), k]
        with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            _search_settings(conn, k, source)
            rows = conn.execute(self._sql(text), params).fetchall()
        dense, keyword = [r for r in rows if r[0] == 0], [r for r in rows if r[0] == 1]
        return (
            [(c, float(r[5])) for c, r in zip(_stored([r[1:] for r in dense]), dense, strict=True)],
            [
                (c, float(r[5]))
                for c, r in zip(_stored([r[1:] for r in keyword]), keyword, strict=True)
            ],
        )

    def indexed(self) -> int:
        """Chunks with a vector (what dense search can find)."""
        return int(self._query("SELECT count(*) FROM {s}.chunks WHERE embedding IS NOT NULL")[0][0])


class PgStore(CatalogVectorStore):
    """The KB's vector index and LangChain VectorStore over a PgCatalog (vectors in its rows)."""

    def __init__(self, embedding: Embeddings, catalog: PgCatalog) -> None:
        self._embedding = embedding
        self.catalog: PgCatalog = catalog

    def refresh(self) -> None:
        """Nothing to reconcile: the vectors commit with their rows."""

    def persist(self) -> None:
        """Nothing to save: Postgres made the write durable at commit."""

    def apply(
        self,
        removed: Sequence[tuple[int, str]],
        added: Sequence[tuple[int, NewChunk]],
        revisions: tuple[int, int],
    ) -> None:
        """The catalog transaction already wrote the vectors."""

    def search_vector(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]:
        return self.catalog.dense_search(vector, k, source)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PgStore:
        """Build a store in KB `kb` (default "langchain") of the database at `database_url`."""
        url = kwargs.get("database_url")
        if not isinstance(url, str):
            raise KnowledgeBaseError("PgStore.from_texts needs database_url=postgresql://...")
        dim = len(embedding.embed_query("dimension probe"))
        model = str(kwargs.get("model") or type(embedding).__name__)
        store = cls(embedding, PgCatalog(url, str(kwargs.get("kb") or "langchain"), model, dim))
        store.add_texts(texts, metadatas, ids=ids)
        return store


def kb_names(url: str) -> list[str]:
    """The KBs in the database: the source of truth for store = postgres (every replica)."""
    with pool(url).connection() as conn:
        return [str(r[0]) for r in conn.execute("SELECT name FROM rag.kbs ORDER BY name")]


def drop_kb(url: str, name: str) -> bool:
    """Remove KB `name` (its schema and row) from the database; False if it was not there."""
    from psycopg import sql

    with pool(url).connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        row = conn.execute("DELETE FROM rag.kbs WHERE name = %s RETURNING id", (name,)).fetchone()
        if row is None:
            return False
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f"kb_{row[0]}"))
        )
        return True
