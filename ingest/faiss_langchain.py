"""LangChain VectorStore over a FaissStore, for API and Python users (`kb.vector_store`).

Knowledge bases do not need it: ingest and search use FaissStore directly, so the CLI never
imports langchain_core.vectorstores (~0.8 s). LangChain's standard VectorStore tests run
against this class (tests/integration/test_langchain_standard.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ingest.catalog import Catalog, NewChunk, StoredChunk
from ingest.catalog_store import CatalogVectorStore
from ingest.faiss_store import FaissStore
from rag_app.settings import Settings


class FaissVectorStore(CatalogVectorStore):
    """A persistent (or, with path=None, in-memory) FAISS + SQLite LangChain vector store.

    `store` is the FaissStore underneath; pass one to share it (a KB's own index), or let the
    constructor open one at `path` (None: SQLite in memory, nothing written to disk).
    """

    def __init__(
        self,
        embedding: Embeddings,
        path: Path | None = None,
        catalog: Catalog | None = None,
        settings: Settings | None = None,
        *,
        store: FaissStore | None = None,
    ) -> None:
        self._embedding = embedding
        self.store = store or FaissStore(path=path, catalog=catalog, settings=settings)
        self.catalog = self.store.catalog

    def apply(
        self,
        removed: Sequence[tuple[int, str]],
        added: Sequence[tuple[int, NewChunk]],
        revisions: tuple[int, int],
    ) -> None:
        self.store.apply(removed, added, revisions)

    def persist(self) -> None:
        self.store.persist()

    def search_vector(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]:
        return self.store.search_vector(vector, k, source)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> FaissVectorStore:
        """Build a store; pass `path=` to persist it (default: in memory)."""
        store = cls(embedding, path=kwargs.get("path"), settings=kwargs.get("settings"))
        store.add_texts(texts, metadatas, ids=ids)
        return store
