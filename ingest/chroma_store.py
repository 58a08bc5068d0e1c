"""Chroma store: langchain_chroma.Chroma (embedded PersistentClient or a `chroma run` server).

The KB catalog stays the source of truth; ChromaIndex mirrors catalog writes into the collection
and records the catalog revision it reflects in `chroma.rev`, reconciling by id when they differ.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from langchain_core.embeddings import Embeddings

from ingest.atomic import atomic_write_text
from ingest.catalog import Catalog, NewChunk, StoredChunk
from rag_app.errors import KnowledgeBaseError
from rag_app.settings import Settings

REV_FILE = "chroma.rev"
BATCH = 1000


def collection_name(kb_name: str, kb_dir: Path) -> str:
    """Unique per KB folder, so two data dirs can share one Chroma server safely."""
    safe = re.sub(r"[^a-zA-Z0-9._-]", "_", kb_name)[:40]
    digest = hashlib.sha256(str(kb_dir.resolve()).encode()).hexdigest()[:10]
    return f"rag-{safe}-{digest}"


def chroma_client(settings: Settings, kb_dir: Path) -> Any:
    """HttpClient for settings.chroma_url, else an embedded PersistentClient in the KB folder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            return chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=client_settings,
            )
        except Exception as exc:  # connection refused, bad URL: one actionable line
            raise KnowledgeBaseError(
                f"cannot reach the Chroma server at {settings.chroma_url} ({exc}); start it with "
                "`chroma run --path DIR --port PORT` or unset RAG_CHROMA_URL for embedded Chroma"
            ) from exc
    return chromadb.PersistentClient(path=str(kb_dir / "chroma"), settings=client_settings)


def make_chroma(settings: Settings, kb_dir: Path, collection: str, embeddings: Embeddings) -> Any:
    """The langchain_chroma.Chroma vector store for one KB (cosine space)."""
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=collection,
        embedding_function=embeddings,
        client=chroma_client(settings, kb_dir),
        collection_metadata={"hnsw:space": "cosine"},
    )


class ChromaIndex:
    """Keeps a Chroma collection in step with the catalog (same duties as FaissStore's index)."""

    def __init__(self, chroma: Any, catalog: Catalog, kb_dir: Path) -> None:
        self.chroma = chroma
        self.catalog = catalog
        self.rev_path = kb_dir / REV_FILE
        text = self.rev_path.read_text().strip() if self.rev_path.is_file() else "0"
        self.synced = int(text) if text.isdigit() else -1
        self.refresh()

    @property
    def collection(self) -> Any:
        return self.chroma._collection

    def persist(self) -> None:
        atomic_write_text(self.rev_path, f"{self.synced}\n")

    def _upsert(self, rows: Sequence[StoredChunk | NewChunk], vectors: np.ndarray) -> None:
        for start in range(0, len(rows), BATCH):
            part = rows[start : start + BATCH]
            self.collection.upsert(
                ids=[r.chunk_id for r in part],
                documents=[r.text for r in part],
                metadatas=[r.metadata or None for r in part],
                embeddings=vectors[start : start + BATCH].tolist(),
            )

    def _delete(self, chunk_ids: list[str]) -> None:
        for start in range(0, len(chunk_ids), BATCH):
            self.collection.delete(ids=chunk_ids[start : start + BATCH])

    def refresh(self) -> None:
        """Reconcile by id when the collection reflects another catalog revision."""
        revision = self.catalog.revision()
        if revision == self.synced:
            return
        in_chroma: set[str] = set()
        total = self.collection.count()
        for offset in range(0, total, BATCH):
            in_chroma.update(self.collection.get(include=[], limit=BATCH, offset=offset)["ids"])
        by_chunk = self.catalog.chunk_id_map()
        self._delete(sorted(in_chroma - set(by_chunk)))
        missing = [by_chunk[c] for c in set(by_chunk) - in_chroma]
        vectors, rows = self.catalog.vectors(missing)
        if rows:
            self._upsert(rows, vectors)
        self.synced = revision
        self.persist()

    def apply(
        self,
        removed: Sequence[tuple[int, str]],
        added: Sequence[tuple[int, NewChunk]],
        revisions: tuple[int, int],
    ) -> None:
        """Mirror one committed catalog transaction in the collection."""
        if self.synced != revisions[0]:
            self.refresh()
            return
        self._delete([cid for _, cid in removed])
        if added:
            rows = [c for _, c in added]
            self._upsert(rows, np.vstack([c.vector for c in rows]))
        self.synced = revisions[1]

    def search_vector(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Top-k by cosine similarity (1 - Chroma's cosine distance), optionally in one source."""
        self.refresh()
        total = self.collection.count()
        if total == 0 or k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
            n_results=min(k, total),
            where={"source": source} if source is not None else None,
            include=["distances"],
        )
        found = list(zip(result["ids"][0], result["distances"][0], strict=True))
        rows = self.catalog.by_chunk_ids([cid for cid, _ in found])
        return [(rows[cid], 1.0 - float(d)) for cid, d in found if cid in rows]
