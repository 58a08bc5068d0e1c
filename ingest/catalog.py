"""Catalog: the KB's SQLite source of truth — documents, chunk texts/metadata/vectors, FTS5 (BM25).

Vector indexes (FAISS, Chroma) are derived from it: every write bumps `revision` in the same
transaction, and an index that was saved at another revision is reconciled from the stored vectors.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  source TEXT PRIMARY KEY, doc_hash TEXT NOT NULL, signature TEXT NOT NULL,
  chunks INTEGER NOT NULL, ingested_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE, source TEXT,
  position INTEGER NOT NULL DEFAULT 0, text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source, position);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(doc_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  text, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
"""

FTS_TERM = re.compile(r"\w+", re.UNICODE)


class StoredChunk(NamedTuple):
    id: int  # int64 id used by the FAISS index; AUTOINCREMENT so ids are never reused
    chunk_id: str
    text: str
    metadata: dict[str, Any]


class NewChunk(NamedTuple):
    chunk_id: str
    source: str | None
    position: int
    text: str
    metadata: dict[str, Any]
    vector: np.ndarray


class DocumentRow(NamedTuple):
    source: str
    doc_hash: str
    signature: str  # chunker settings the document was chunked with
    chunks: int
    ingested_at: str


def fts_terms(query: str) -> list[str]:
    """The words of a keyword query (lower-cased, unique, \\w+ only: no query syntax survives).

    Stopwords are dropped (unless the query has nothing else): OR-ing "the" or "of" makes FTS5
    score nearly every row for almost no BM25 weight; at 100k chunks that halved the p95
    latency of keyword search (bench/hybrid.py).
    """
    from rag_app.words import STOPWORDS

    terms = list(dict.fromkeys(t.lower() for t in FTS_TERM.findall(query)))
    return [t for t in terms if t not in STOPWORDS] or terms


def fts_query(query: str) -> str:
    """User text -> a safe FTS5 query: each word quoted, OR-ed."""
    return " OR ".join(f'"{t}"' for t in fts_terms(query))


class KbCatalog(Protocol):
    """What a knowledge base needs from its catalog: SQLite's Catalog or Postgres's PgCatalog.

    Writes go inside `transaction()` (all or nothing); `last_commit` is the (before, after)
    revision of this process's last write, which the vector index mirrors.
    """

    last_commit: tuple[int, int]

    def transaction(self) -> AbstractContextManager[Any]: ...
    def revision(self) -> int: ...
    def close(self) -> None: ...
    def delete_chunk_ids(self, chunk_ids: Sequence[str]) -> list[tuple[int, str]]: ...
    def delete_source(self, source: str) -> list[tuple[int, str]]: ...
    def insert_chunks(self, chunks: Sequence[NewChunk]) -> list[int]: ...
    def upsert_document(self, doc: DocumentRow) -> None: ...
    def count(self) -> int: ...
    def documents(self) -> list[DocumentRow]: ...
    def document(self, source: str) -> DocumentRow | None: ...
    def sources_with_hash(self, doc_hash: str) -> list[str]: ...
    def by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]: ...
    def by_chunk_ids(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]: ...
    def neighbours(self, chunk_id: str, window: int) -> list[StoredChunk]: ...
    def source_ids(self, source: str) -> list[int]: ...
    def keyword_search(
        self, query: str, k: int, source: str | None = None
    ) -> list[tuple[int, float]]: ...


@runtime_checkable
class HybridCatalog(Protocol):
    """A catalog that answers both candidate lists of hybrid retrieval in one round trip
    (Postgres's PgCatalog): (dense, keyword), each (row, score) best first."""

    def hybrid_search(
        self, vector: Any, query: str, k: int, source: str | None = None
    ) -> tuple[list[tuple[StoredChunk, float]], list[tuple[StoredChunk, float]]]: ...


class Catalog:
    """One SQLite file (or in-memory db); safe to share between threads of one process."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        target = str(path) if path is not None else ":memory:"
        self.conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self.lock = threading.RLock()
        self.last_commit = (0, 0)  # (revision before, after) of this process's last write
        self.conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process; a power cut may lose the last commits only.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing write; bumps the revision so derived indexes know they are behind."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                row = self.conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
                before = int(row[0]) if row else 0
                yield self.conn
                self.conn.execute(
                    "INSERT INTO meta(key, value) VALUES('revision', '1') ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                )
                self.conn.execute("COMMIT")
                self.last_commit = (before, before + 1)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def revision(self) -> int:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
        return int(row[0]) if row else 0

    # --- writes (call inside transaction()) ---------------------------------------------------
    def delete_chunk_ids(self, chunk_ids: Sequence[str]) -> list[tuple[int, str]]:
        removed: list[tuple[int, str]] = []
        for cid in chunk_ids:
            row = self.conn.execute(
                "DELETE FROM chunks WHERE chunk_id=? RETURNING id, chunk_id", (cid,)
            ).fetchone()
            if row:
                removed.append((int(row[0]), str(row[1])))
        return removed

    def delete_source(self, source: str) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            "DELETE FROM chunks WHERE source=? RETURNING id, chunk_id", (source,)
        ).fetchall()
        self.conn.execute("DELETE FROM documents WHERE source=?", (source,))
        return [(int(r[0]), str(r[1])) for r in rows]

    def insert_chunks(self, chunks: Sequence[NewChunk]) -> list[int]:
        ids: list[int] = []
        for c in chunks:
            cur = self.conn.execute(
                "INSERT INTO chunks(chunk_id, source, position, text, metadata, vector) "
                "VALUES (?,?,?,?,?,?)",
                (
                    c.chunk_id,
                    c.source,
                    c.position,
                    c.text,
                    json.dumps(c.metadata),
                    np.ascontiguousarray(c.vector, dtype=np.float32).tobytes(),
                ),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    def upsert_document(self, doc: DocumentRow) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO documents(source, doc_hash, signature, chunks, ingested_at) "
            "VALUES (?,?,?,?,?)",
            tuple(doc),
        )

    # --- reads --------------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.lock:
            return self.conn.execute(sql, tuple(params)).fetchall()

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM chunks")[0][0])

    def documents(self) -> list[DocumentRow]:
        rows = self._query("SELECT * FROM documents ORDER BY source")
        return [DocumentRow(*r) for r in rows]

    def document(self, source: str) -> DocumentRow | None:
        rows = self._query("SELECT * FROM documents WHERE source=?", (source,))
        return DocumentRow(*rows[0]) if rows else None

    def sources_with_hash(self, doc_hash: str) -> list[str]:
        """Documents with exactly these bytes (sha256): a copy under a new path is reported
        instead of stored twice."""
        rows = self._query(
            "SELECT source FROM documents WHERE doc_hash=? ORDER BY source", (doc_hash,)
        )
        return [str(r[0]) for r in rows]

    def _stored(self, where: str, params: Sequence[Any]) -> list[StoredChunk]:
        rows = self._query(f"SELECT id, chunk_id, text, metadata FROM chunks WHERE {where}", params)
        return [StoredChunk(int(r[0]), r[1], r[2], json.loads(r[3])) for r in rows]

    def by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = {}
        for start in range(0, len(ids), 500):  # SQLite caps bound parameters
            part = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(part))
            out.update({s.id: s for s in self._stored(f"id IN ({marks})", part)})
        return out

    def by_chunk_ids(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        out: dict[str, StoredChunk] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            out.update({s.chunk_id: s for s in self._stored(f"chunk_id IN ({marks})", part)})
        return out

    def neighbours(self, chunk_id: str, window: int) -> list[StoredChunk]:
        rows = self._query("SELECT source, position FROM chunks WHERE chunk_id=?", (chunk_id,))
        if not rows:
            return []
        source, position = rows[0]
        return self._stored(
            "source=? AND position BETWEEN ? AND ? ORDER BY position",
            (source, position - window, position + window),
        )

    def source_ids(self, source: str) -> list[int]:
        return [int(r[0]) for r in self._query("SELECT id FROM chunks WHERE source=?", (source,))]

    def chunk_id_map(self) -> dict[str, int]:
        """chunk_id -> int id for every chunk (ids only: cheap even for large KBs)."""
        return {str(r[1]): int(r[0]) for r in self._query("SELECT id, chunk_id FROM chunks")}

    def all_ids(self) -> np.ndarray:
        return np.array([r[0] for r in self._query("SELECT id FROM chunks")], dtype=np.int64)

    def vectors(self, ids: Sequence[int]) -> tuple[np.ndarray, list[StoredChunk]]:
        """Stored vectors (n, dim) and rows for `ids` (missing ids and NULL vectors skipped)."""
        vecs: list[np.ndarray] = []
        rows: list[StoredChunk] = []
        for start in range(0, len(ids), 500):
            part = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(part))
            for r in self._query(
                f"SELECT id, chunk_id, text, metadata, vector FROM chunks WHERE id IN ({marks}) "
                "AND vector IS NOT NULL",
                part,
            ):
                rows.append(StoredChunk(int(r[0]), r[1], r[2], json.loads(r[3])))
                vecs.append(np.frombuffer(r[4], dtype=np.float32))
        return (np.vstack(vecs) if vecs else np.zeros((0, 0), np.float32)), rows

    def keyword_search(
        self, query: str, k: int, source: str | None = None
    ) -> list[tuple[int, float]]:
        """(id, BM25 score) best first; the score is -bm25() so higher is better."""
        match = fts_query(query)
        if not match or k <= 0:
            return []
        # The FTS rowid is the chunk id. Joining `chunks` only when filtering by source: with
        # the join SQLite ranks 2-3x slower (100k chunks: p95 118 -> 48 ms, bench/hybrid.py).
        sql = "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list[Any] = [match]
        if source is not None:
            sql = (
                "SELECT c.id, bm25(chunks_fts) AS s FROM chunks_fts JOIN chunks c "
                "ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? AND c.source = ?"
            )
            params.append(source)
        rows = self._query(sql + " ORDER BY s LIMIT ?", [*params, k])
        return [(int(r[0]), -float(r[1])) for r in rows]
