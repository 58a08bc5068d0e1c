"""LangChain's VectorStore API over a KB catalog: shared by FaissStore and the Postgres store.

A subclass keeps the rows in `catalog` and supplies the vector side: `search_vector` (top-k
by cosine), `apply` (mirror one committed catalog transaction) and `persist`.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from ingest.catalog import KbCatalog, NewChunk, StoredChunk
from ingest.embed import embed_texts


class CatalogVectorStore(VectorStore):
    """add/delete/get/search through the catalog; the subclass owns the vector index."""

    catalog: KbCatalog
    _embedding: Embeddings

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    # --- the vector side: abstract (VectorStore is an ABC), each store supplies its own ------
    @abstractmethod
    def apply(
        self,
        removed: Sequence[tuple[int, str]],
        added: Sequence[tuple[int, NewChunk]],
        revisions: tuple[int, int],
    ) -> None:
        """Mirror one committed catalog transaction in the vector index."""

    @abstractmethod
    def persist(self) -> None:
        """Make the vector side durable (a no-op where the database already is)."""

    @abstractmethod
    def search_vector(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Top-k chunks by cosine to a normalised vector, optionally within one source."""

    # --- LangChain VectorStore interface ------------------------------------------------------
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        metas = metadatas or [{} for _ in texts]
        given: list[str | None] = list(ids) if ids else [None] * len(texts)
        chunk_ids = [i or uuid.uuid4().hex for i in given]
        vectors = embed_texts(self._embedding, texts)
        rows = [
            NewChunk(cid, _meta_str(m, "source"), _meta_int(m, "position"), t, dict(m), v)
            for cid, t, m, v in zip(chunk_ids, texts, metas, vectors, strict=True)
        ]
        with self.catalog.transaction():
            removed = self.catalog.delete_chunk_ids(chunk_ids)
            new_ids = self.catalog.insert_chunks(rows)
        self.apply(removed, list(zip(new_ids, rows, strict=True)), self.catalog.last_commit)
        self.persist()
        return chunk_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if not ids:
            return None
        with self.catalog.transaction():
            removed = self.catalog.delete_chunk_ids(ids)
        self.apply(removed, [], self.catalog.last_commit)
        self.persist()
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        rows = self.catalog.by_chunk_ids(list(ids))
        return [_document(rows[i]) for i in ids if i in rows]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if kwargs.get("filter"):
            name = type(self).__name__
            raise NotImplementedError(f"{name} filters by source=... only, not filter=...")
        found = self.search_vector(np.asarray(embedding), k, kwargs.get("source"))
        return [(_document(row), score) for row, score in found]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        vector = self._embedding.embed_query(query)
        return self.similarity_search_with_score_by_vector(vector, k, **kwargs)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def _select_relevance_score_fn(self) -> Any:
        return lambda score: min(1.0, max(0.0, score))  # cosine -> [0, 1]


def _document(row: StoredChunk) -> Document:
    return Document(id=row.chunk_id, page_content=row.text, metadata=row.metadata)


def _meta_str(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    return value if isinstance(value, str) else None


def _meta_int(meta: dict, key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) else 0
