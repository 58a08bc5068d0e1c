"""Knowledge base: a named folder (manifest, SQLite catalog, FAISS or Chroma) to search."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ingest.catalog import (
    Catalog,
    DocumentRow,
    HybridCatalog,
    KbCatalog,
    NewChunk,
    StoredChunk,
)
from ingest.manifest import Manifest, check_compatible, now_iso, read_manifest, write_manifest
from rag_app.errors import KnowledgeBaseError
from rag_app.records import Chunk
from rag_app.settings import Settings, get_settings

if TYPE_CHECKING:  # langchain and the embedding runtimes load only when a KB is opened:
    # listing KBs reads manifests alone (`rag kb list` in well under a second)
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore

KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PERSIST_EVERY_S = 10.0  # the FAISS file is a cache of the catalog: saving it less often is safe


class VectorIndex(Protocol):
    """What the KB needs from a vector backend (FaissStore, ChromaIndex, PgStore)."""

    def refresh(self) -> None: ...
    def persist(self) -> None: ...
    def apply(
        self,
        removed: Sequence[tuple[int, str]],
        added: Sequence[tuple[int, NewChunk]],
        revisions: tuple[int, int],
    ) -> None: ...
    def search_vector(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]: ...


@dataclass(frozen=True)
class SourceInfo:
    source: str
    doc_hash: str
    chunks: int
    ingested_at: str


@dataclass(frozen=True)
class DocumentWrite:
    """One document's replacement: its catalog row and its chunks with their vectors."""

    row: DocumentRow
    chunks: list[Chunk]
    vectors: np.ndarray


def to_chunk(row: StoredChunk) -> Chunk:
    """Catalog row -> Chunk; rows added through the plain VectorStore API get neutral provenance."""
    meta = row.metadata
    if "doc_hash" in meta and "start" in meta:
        return Chunk.from_metadata(row.text, {**meta, "chunk_id": row.chunk_id})
    return Chunk(
        chunk_id=row.chunk_id,
        text=row.text,
        source=str(meta.get("source", "")),
        doc_hash="",
        start=0,
        end=len(row.text),
    )


class KnowledgeBase:
    """Search and maintenance over one KB; writes go through `write_documents`/`remove_source`."""

    def __init__(
        self,
        name: str,
        path: Path,
        settings: Settings,
        embeddings: Embeddings,
        manifest: Manifest,
        catalog: KbCatalog,
        index: VectorIndex,
        vector_store: VectorStore | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.settings = settings
        self.embeddings = embeddings
        self.manifest = manifest
        self.catalog = catalog
        self.index = index
        self._vector_store = vector_store
        self._persisted_at = time.monotonic()

    @property
    def vector_store(self) -> VectorStore:
        """This KB as a LangChain VectorStore, for API and Python users. FAISS KBs build their
        adapter on first use: ingest and search never need it (nor its ~0.8 s import)."""
        if self._vector_store is None:
            from ingest.faiss_langchain import FaissVectorStore
            from ingest.faiss_store import FaissStore

            if not isinstance(self.index, FaissStore):
                raise TypeError(f"no LangChain vector store for index {type(self.index)}")
            self._vector_store = FaissVectorStore(self.embeddings, store=self.index)
        return self._vector_store

    def stats(self) -> dict[str, Any]:
        """Name, store, embedding model, chunker settings and sizes (CLI and API show this)."""
        return {
            "name": self.name,
            "store": self.manifest.store,
            "embedding_model": self.manifest.embedding_model,
            "dimension": self.manifest.dimension,
            "chunk_size": self.manifest.chunk_size,
            "chunk_overlap": self.manifest.chunk_overlap,
            "documents": len(self.sources()),
            "chunks": self.count(),
        }

    def count(self) -> int:
        return self.catalog.count()

    def dense_search(
        self, query: str, k: int, source: str | None = None
    ) -> list[tuple[Chunk, float]]:
        from ingest.embed import embed_texts

        vector = embed_texts(self.embeddings, [query])[0]
        return [(to_chunk(row), s) for row, s in self.index.search_vector(vector, k, source)]

    def keyword_search(
        self, query: str, k: int, source: str | None = None
    ) -> list[tuple[Chunk, float]]:
        found = self.catalog.keyword_search(query, k, source)
        rows = self.catalog.by_ids([i for i, _ in found])
        return [(to_chunk(rows[i]), s) for i, s in found if i in rows]

    def hybrid_search(
        self, query: str, k: int, source: str | None = None
    ) -> tuple[list[tuple[Chunk, float]], list[tuple[Chunk, float]]]:
        """(dense, keyword) candidates for one question; the caller fuses them. A Postgres KB
        answers both in one statement (its catalog's hybrid_search), not four round trips."""
        if isinstance(self.catalog, HybridCatalog):
            from ingest.embed import embed_texts

            vector = embed_texts(self.embeddings, [query])[0]
            dense, keyword = self.catalog.hybrid_search(vector, query, k, source)
            return [(to_chunk(r), s) for r, s in dense], [(to_chunk(r), s) for r, s in keyword]
        if self.count() == 0:
            return [], []
        return self.dense_search(query, k, source), self.keyword_search(query, k, source)

    def get_chunks(self, chunk_ids: list[str]) -> list[Chunk]:
        rows = self.catalog.by_chunk_ids(chunk_ids)
        return [to_chunk(rows[c]) for c in chunk_ids if c in rows]

    def neighbours(self, chunk_id: str, window: int = 1) -> list[Chunk]:
        return [to_chunk(r) for r in self.catalog.neighbours(chunk_id, window)]

    def sources(self) -> list[SourceInfo]:
        return [
            SourceInfo(d.source, d.doc_hash, d.chunks, d.ingested_at)
            for d in self.catalog.documents()
        ]

    def signature(self) -> str:
        """Chunker settings a document was chunked with; a change re-chunks on next ingest."""
        return f"{self.settings.chunk_size}/{self.settings.chunk_overlap}"

    # --- writes -------------------------------------------------------------------------------
    def write_documents(self, writes: Sequence[DocumentWrite]) -> int:
        """Replace documents (old chunks out, new in) in ONE catalog transaction; chunks written."""
        removed: list[tuple[int, str]] = []
        added: list[tuple[int, NewChunk]] = []
        with self.catalog.transaction():
            for w in writes:
                removed += self.catalog.delete_source(w.row.source)
                rows = [
                    NewChunk(c.chunk_id, c.source, c.position, c.text, c.to_metadata(), v)
                    for c, v in zip(w.chunks, w.vectors, strict=True)
                ]
                added += zip(self.catalog.insert_chunks(rows), rows, strict=True)
                self.catalog.upsert_document(w.row._replace(chunks=len(rows)))
        self.index.apply(removed, added, self.catalog.last_commit)
        self.maybe_persist()
        return len(added)

    def remove_source(self, source: str) -> int:
        with self.catalog.transaction():
            removed = self.catalog.delete_source(source)
        self.index.apply(removed, [], self.catalog.last_commit)
        self.persist()
        return len(removed)

    def maybe_persist(self) -> None:
        if time.monotonic() - self._persisted_at > PERSIST_EVERY_S:
            self.persist()

    def persist(self) -> None:
        self.index.persist()
        self._persisted_at = time.monotonic()

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer per KB at a time (readers never block)."""
        if self.manifest.store == "postgres":
            # Writers on any replica or CLI serialise per transaction on the KB's row in rag.kbs
            # (PgCatalog.transaction) and each document is replaced atomically: no file lock,
            # so a CLI ingest and an API job into one KB both run and neither loses a file.
            yield
            return
        with open(self.path / "ingest.lock", "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise KnowledgeBaseError(
                    f"another ingest is writing knowledge base {self.name}; wait for it to finish"
                ) from exc
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        self.catalog.close()


def _dimension(embeddings: Embeddings) -> int:
    dim = getattr(embeddings, "dim", None)
    return int(dim) if isinstance(dim, int) else len(embeddings.embed_query("dimension probe"))


def check_name(name: str) -> None:
    if not KB_NAME.match(name):
        raise KnowledgeBaseError(
            f"invalid knowledge base name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )


def _new_manifest(name: str, kb_dir: Path, settings: Settings, model: str, dim: int) -> Manifest:
    from ingest.chroma_store import collection_name

    store = settings.store
    return Manifest(
        store=store,
        embedding_model=model,
        dimension=dim,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        created_at=now_iso(),
        chroma_collection=collection_name(name, kb_dir) if store == "chroma" else None,
    )


def open_kb(
    name: str | None = None,
    settings: Settings | None = None,
    create: bool = False,
    embeddings: Embeddings | None = None,
) -> KnowledgeBase:
    """Open (or with create=True, create) a KB; refuses a missing KB or another embedding model."""
    settings = settings or get_settings()
    name = name or settings.kb
    check_name(name)
    kb_dir = settings.kb_dir(name)
    manifest = read_manifest(kb_dir)
    if manifest is None and not create and settings.store == "postgres":
        # made through another replica or host: the database is the source of truth, and this
        # data dir gets its manifest (a local cache of the KB's settings) on first open
        create = name in _database_kbs(settings)
    if manifest is None and not create:
        known = ", ".join(list_kbs(settings)) or "none yet"
        raise KnowledgeBaseError(
            f"knowledge base {name} does not exist in {settings.kb_root} (known: {known}) — "
            f"create it with `rag ingest PATH --kb {name}`"
        )
    from ingest.embed import embedder_name, load_embedder

    embeddings = embeddings or load_embedder(settings)
    model, dim = embedder_name(embeddings), _dimension(embeddings)
    new = manifest is None
    if manifest is None:
        manifest = _new_manifest(name, kb_dir, settings, model, dim)
    check_compatible(name, manifest, model, dim)
    # A database KB is opened (reached, checked) before its folder is written: a bad
    # RAG_DATABASE_URL leaves nothing behind.
    catalog = _open_catalog(name, manifest, settings, kb_dir, model, dim)
    if new:
        kb_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(kb_dir, manifest)
    index, store = _open_index(manifest, settings, kb_dir, catalog, embeddings)
    return KnowledgeBase(name, kb_dir, settings, embeddings, manifest, catalog, index, store)


def _open_catalog(
    name: str, manifest: Manifest, settings: Settings, kb_dir: Path, model: str, dim: int
) -> KbCatalog:
    if manifest.store == "postgres":
        from ingest.pg_db import database_url
        from ingest.pg_store import PgCatalog

        return PgCatalog(database_url(settings), name, model, dim)
    kb_dir.mkdir(parents=True, exist_ok=True)
    return Catalog(kb_dir / "catalog.sqlite")


def _open_index(
    manifest: Manifest, settings: Settings, kb_dir: Path, catalog: KbCatalog, emb: Embeddings
) -> tuple[VectorIndex, VectorStore | None]:
    """(the KB's index, its LangChain store if the backend is one; FAISS: built on demand)."""
    if manifest.store == "postgres":
        from ingest.pg_store import PgCatalog, PgStore

        assert isinstance(catalog, PgCatalog)
        pg = PgStore(emb, catalog)
        return pg, pg
    assert isinstance(catalog, Catalog)
    if manifest.store == "chroma":
        from ingest.chroma_store import ChromaIndex, make_chroma

        chroma = make_chroma(settings, kb_dir, manifest.chroma_collection or "rag", emb)
        return ChromaIndex(chroma, catalog, kb_dir), chroma
    from ingest.faiss_store import FaissStore

    return FaissStore(path=kb_dir, catalog=catalog, settings=settings), None


def _local_kbs(settings: Settings) -> list[str]:
    root = settings.kb_root
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file())


def _database_kbs(settings: Settings) -> list[str]:
    from ingest.pg_db import database_url
    from ingest.pg_store import kb_names

    return kb_names(database_url(settings))


def list_kbs(settings: Settings) -> list[str]:
    """KB names. With store = postgres the database's KBs (whichever replica made them) plus
    this data dir's FAISS/Chroma KBs; a local postgres manifest whose KB left the database is
    stale and not listed."""
    local = _local_kbs(settings)
    if settings.store != "postgres":
        return local
    in_db = set(_database_kbs(settings))
    embedded = {n for n in local if _manifest_store(settings.kb_dir(n)) != "postgres"}
    return sorted(in_db | embedded)


def _manifest_store(kb_dir: Path) -> str | None:
    manifest = read_manifest(kb_dir)
    return manifest.store if manifest else None


def remove_kb(name: str, settings: Settings) -> bool:
    """Delete a KB folder (and its collection on a Chroma server); False if it did not exist."""
    check_name(name)
    kb_dir = settings.kb_dir(name)
    manifest = read_manifest(kb_dir) if (kb_dir / "manifest.json").exists() else None
    dropped = False
    in_database = manifest.store == "postgres" if manifest else settings.store == "postgres"
    if in_database:  # the database's KB, whether or not this data dir has opened it
        from ingest.pg_db import database_url
        from ingest.pg_store import drop_kb
        from ingest.pg_uploads import forget_kb_uploads

        dropped = drop_kb(database_url(settings), name)
        forget_kb_uploads(settings, name)  # the bytes of its uploaded documents go with it
    if not kb_dir.exists():
        return dropped
    if manifest and manifest.store == "chroma" and settings.chroma_url:
        from ingest.chroma_store import chroma_client

        client = chroma_client(settings, kb_dir)
        if manifest.chroma_collection in [c.name for c in client.list_collections()]:
            client.delete_collection(manifest.chroma_collection)
    # Rename first so a crash mid-delete never leaves a half-removed KB that looks valid.
    trash = kb_dir.with_name(f".removing-{kb_dir.name}-{os.getpid()}")
    os.replace(kb_dir, trash)
    shutil.rmtree(trash)
    return True
