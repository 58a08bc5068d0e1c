"""Unit tests for ingest.faiss_store (through its LangChain adapter where that is shorter): ids,
deletes, persistence, reconcile after a crash, HNSW."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.catalog import Catalog, DocumentRow, NewChunk
from ingest.faiss_langchain import FaissVectorStore
from ingest.faiss_store import FaissStore, build_faiss_index, is_hnsw
from ingest.kb import DocumentWrite, KnowledgeBase, open_kb
from rag_app.records import Chunk
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

TEXTS = ["red apples grow", "green pears ripen", "blue sea waves", "grey stone tower"]


def ids_in(store: FaissStore) -> set[int]:
    import faiss

    return set(faiss.vector_to_array(store.index.id_map).tolist()) if store.index else set()


def test_add_search_delete_and_reopen(tmp_path: Path) -> None:
    emb = HashingEmbeddings()
    store = FaissVectorStore(emb, path=tmp_path)
    ids = store.add_texts(TEXTS, [{"source": f"s{i}", "n": i} for i in range(4)])
    top = store.similarity_search_with_score("blue sea", k=2)
    assert top[0][0].page_content == "blue sea waves" and top[0][1] > top[1][1]
    assert top[0][0].metadata == {"source": "s2", "n": 2} and top[0][0].id == ids[2]
    store.delete([ids[2]])
    assert "blue sea waves" not in [d.page_content for d in store.similarity_search("blue sea", 4)]
    reopened = FaissVectorStore(emb, path=tmp_path)
    assert sorted(d.page_content for d in reopened.similarity_search("x", k=10)) == sorted(
        TEXTS[:2] + TEXTS[3:]
    )
    assert [p.name for p in tmp_path.glob("index.*.faiss")] == [
        f"index.{reopened.catalog.revision()}.faiss"
    ]


def test_source_filter(tmp_path: Path) -> None:
    store = FaissVectorStore(HashingEmbeddings(), path=None)
    store.add_texts(TEXTS, [{"source": "a"}, {"source": "b"}, {"source": "a"}, {"source": "b"}])
    found = store.similarity_search("blue sea", k=4, source="b")
    assert {d.metadata["source"] for d in found} == {"b"} and len(found) == 2


def test_index_behind_catalog_is_reconciled(tmp_path: Path) -> None:
    """A crash after the catalog commit but before the index save loses nothing on reopen."""
    emb = HashingEmbeddings()
    store = FaissVectorStore(emb, path=tmp_path)
    ids = store.add_texts(TEXTS[:2])
    # Simulate the crash: write to the catalog only (a second process), never save the index.
    other = Catalog(tmp_path / "catalog.sqlite")
    vec = np.asarray(emb.embed_query(TEXTS[2]), dtype=np.float32)
    with other.transaction():
        other.delete_chunk_ids([ids[0]])
        other.insert_chunks([NewChunk("late", None, 0, TEXTS[2], {}, vec)])
    reopened = FaissVectorStore(emb, path=tmp_path)
    assert ids_in(reopened.store) == set(reopened.catalog.all_ids().tolist())
    assert reopened.similarity_search("blue sea waves", k=1)[0].id == "late"
    # The first store sees the other writer's changes on its next search too.
    assert store.similarity_search("blue sea waves", k=1)[0].id == "late"
    assert ids[0] not in [d.id for d in store.similarity_search("red apples", k=5)]


def test_hnsw_above_threshold_and_rebuild_on_delete(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ann_threshold=3)
    assert not is_hnsw(build_faiss_index(8, 3, settings))
    assert is_hnsw(build_faiss_index(8, 4, settings))
    store = FaissVectorStore(HashingEmbeddings(), path=tmp_path, settings=settings)
    ids = store.add_texts(TEXTS[:2])
    assert not is_hnsw(store.store.index)
    ids += store.add_texts(TEXTS[2:])
    assert is_hnsw(store.store.index)  # upgraded once the store grew past the threshold
    store.delete([ids[1]])  # HNSW cannot remove: rebuilt from stored vectors
    assert (
        ids_in(store.store) == set(store.catalog.all_ids().tolist())
        and store.store.index.ntotal == 3
    )
    assert store.similarity_search("grey stone tower", k=1)[0].page_content == "grey stone tower"


def test_hnsw_deletes_are_masked_until_a_fifth_is_dead_then_rebuilt(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ann_threshold=3)
    texts = [f"note {i} about tide {i * 7} and harbour {i * 13}" for i in range(20)]
    store = FaissVectorStore(HashingEmbeddings(), path=tmp_path, settings=settings)
    ids = store.add_texts(texts)
    graph = store.store.index
    store.delete(ids[:2])  # 2 of 20: masked, no rebuild
    assert (
        store.store.index is graph and store.store.index.ntotal == 20 and len(store.store.dead) == 2
    )
    found = [d.id for d in store.similarity_search(texts[0], k=20)]
    assert len(found) == 18 and not set(ids[:2]) & set(found)
    store.store.persist()
    reopened = FaissVectorStore(HashingEmbeddings(), path=tmp_path, settings=settings)
    assert (
        reopened.store.index.ntotal == 20 and len(reopened.store.dead) == 2
    )  # derived from the catalog
    assert ids[0] not in [d.id for d in reopened.similarity_search(texts[0], k=5)]
    reopened.delete(ids[2:5])  # 5 of 20 dead > 20%: rebuilt from the stored vectors
    assert reopened.store.index.ntotal == 15 and len(reopened.store.dead) == 0
    assert ids_in(reopened.store) == set(reopened.catalog.all_ids().tolist())
    assert reopened.similarity_search(texts[9], k=1)[0].id == ids[9]


def test_reader_upgrades_to_hnsw_when_another_writer_grows_the_kb(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ann_threshold=3)
    reader = FaissVectorStore(HashingEmbeddings(), path=tmp_path, settings=settings)
    reader.add_texts(TEXTS[:2])
    writer = FaissVectorStore(HashingEmbeddings(), path=tmp_path, settings=settings)
    writer.add_texts(TEXTS[2:])
    assert not is_hnsw(reader.store.index)
    assert reader.similarity_search("grey stone tower", k=1)[0].page_content == "grey stone tower"
    assert is_hnsw(reader.store.index)  # the search's refresh saw 4 > 3 chunks and switched
    assert ids_in(reader.store) == set(reader.catalog.all_ids().tolist())


def test_hnsw_upgrade_past_one_rebuild_slice_via_kb_writes(tmp_path: Path) -> None:
    """The upgrade rebuilds from stored vectors in 10k slices: the index must be sized for all.

    Regression: it was sized by the first slice (10k <= threshold), so it stayed exact.
    """
    settings = Settings(data_dir=tmp_path, ann_threshold=10_000)
    rng = np.random.default_rng(0)

    def batch(b: int, n: int = 6_000) -> list[DocumentWrite]:
        src = f"doc{b}.txt"
        chunks = [
            Chunk(
                chunk_id=f"{b}-{i}", text="t", source=src, doc_hash="h", start=0, end=1, position=i
            )
            for i in range(n)
        ]
        vectors = rng.standard_normal((n, 8)).astype(np.float32)
        row = DocumentRow(src, "h", "sig", n, "2026-01-01T00:00:00+00:00")
        return [DocumentWrite(row, chunks, vectors)]

    def faiss_of(kb: KnowledgeBase) -> FaissStore:
        assert isinstance(kb.index, FaissStore)
        return kb.index

    kb = open_kb("big", settings, create=True, embeddings=HashingEmbeddings(dim=8))
    kb.write_documents(batch(0))
    assert not is_hnsw(faiss_of(kb).index)
    kb.write_documents(batch(1))  # 12k > threshold
    assert is_hnsw(faiss_of(kb).index)
    assert ids_in(faiss_of(kb)) == set(kb.catalog.all_ids().tolist())
    kb.persist()
    kb.close()
    reopened = open_kb("big", settings, embeddings=HashingEmbeddings(dim=8))
    assert is_hnsw(faiss_of(reopened).index)  # the persisted index stays HNSW
    reopened.close()
    for f in settings.kb_dir("big").glob("index.*.faiss"):
        f.unlink()  # lost index file: rebuilt from the catalog on open, still HNSW
    rebuilt = open_kb("big", settings, embeddings=HashingEmbeddings(dim=8))
    assert is_hnsw(faiss_of(rebuilt).index) and faiss_of(rebuilt).index.ntotal == 12_000
    rebuilt.close()


def test_persist_removes_temp_files_of_dead_writers(tmp_path: Path) -> None:
    orphan = tmp_path / ".index.7.999999.tmp"  # left by a killed writer (pid 999999 is gone)
    tmp_path.mkdir(exist_ok=True)
    orphan.write_bytes(b"partial")
    store = FaissVectorStore(HashingEmbeddings(), path=tmp_path)
    store.add_texts(["one text"])
    assert not orphan.exists()
    assert not list(tmp_path.glob(".index.*.tmp"))


def test_kb_vector_store_is_the_langchain_view_of_its_own_index(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    kb = open_kb("lc", settings, create=True, embeddings=HashingEmbeddings())
    assert isinstance(kb.index, FaissStore) and kb._vector_store is None  # not built to ingest
    ids = kb.vector_store.add_texts(TEXTS)
    assert isinstance(kb.vector_store, FaissVectorStore) and kb.vector_store.store is kb.index
    assert kb.dense_search("grey stone tower", 1)[0][0].chunk_id == ids[3]  # the KB sees it
    kb.close()
