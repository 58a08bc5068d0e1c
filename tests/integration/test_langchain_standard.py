"""LangChain's own standard VectorStore tests (langchain-tests): FAISS + SQLite (its LangChain
adapter, ingest.faiss_langchain.FaissVectorStore), and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests

from ingest.faiss_langchain import FaissVectorStore

# The suite's async tests are bare `async def`s and it forbids overriding tests, so the asyncio
# mark goes on the whole module; pytest-asyncio then warns about the sync ones (harmless).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning"),
]


class TestFaissStoreOnDisk(VectorStoreIntegrationTests):
    """Persistent store in a temp folder (the way knowledge bases use it)."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        store = FaissVectorStore(self.get_embeddings(), path=tmp_path / "store")
        try:
            yield store
        finally:
            store.catalog.close()


class TestFaissStoreInMemory(VectorStoreIntegrationTests):
    """path=None: SQLite in memory, nothing written to disk."""

    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:  # type: ignore[override]
        store = FaissVectorStore(self.get_embeddings())
        try:
            yield store
        finally:
            store.catalog.close()


class TestPgStore(VectorStoreIntegrationTests):
    """The Postgres + pgvector store, on a fresh database of the session's real server."""

    @pytest.fixture
    def vectorstore(self, pg_url: str) -> VectorStore:  # type: ignore[override]
        from ingest.pg_store import PgCatalog, PgStore

        embeddings = self.get_embeddings()
        dim = len(embeddings.embed_query("dimension probe"))
        return PgStore(embeddings, PgCatalog(pg_url, "langchain", "fake", dim))
