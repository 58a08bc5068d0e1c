"""Unit tests for ingest.catalog: FTS5 BM25 search (sanitised, incremental) and revisions."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.catalog import Catalog, DocumentRow, NewChunk, fts_query


def new_chunk(cid: str, text: str, source: str = "s1") -> NewChunk:
    return NewChunk(cid, source, 0, text, {"source": source}, np.ones(4, dtype=np.float32))


@pytest.fixture
def catalog(tmp_path) -> Catalog:  # noqa: ANN001
    cat = Catalog(tmp_path / "c.sqlite")
    with cat.transaction():
        cat.insert_chunks(
            [
                new_chunk("a", "The lighthouse keeper lit the lamp at dusk."),
                new_chunk("b", "A bridge spans the estuary; the lighthouse is far away.", "s2"),
                new_chunk("c", "Orchards grow apples and pears."),
            ]
        )
        cat.upsert_document(DocumentRow("s1", "h", "200/32", 2, "now"))
    return cat


@pytest.mark.parametrize(
    "query",
    ['"lamp', "lamp*", "NEAR(lamp dusk)", "keeper AND -lamp", "col:lamp", "^lamp", "(lamp"],
)
def test_fts_syntax_in_queries_is_harmless(catalog: Catalog, query: str) -> None:
    hits = catalog.keyword_search(query, 5)
    assert hits and catalog.by_ids([hits[0][0]])[hits[0][0]].chunk_id == "a"


def test_bm25_scores_are_positive_and_ranked(catalog: Catalog) -> None:
    hits = catalog.keyword_search("lighthouse keeper", 5)
    ids = [catalog.by_ids([i])[i].chunk_id for i, _ in hits]
    assert ids == ["a", "b"]
    assert hits[0][1] > hits[1][1] > 0


def test_source_filter_and_empty_query(catalog: Catalog) -> None:
    hits = catalog.keyword_search("lighthouse", 5, source="s2")
    assert [catalog.by_ids([i])[i].chunk_id for i, _ in hits] == ["b"]
    assert catalog.keyword_search("?!", 5) == []
    assert fts_query('x "y" z') == '"x" OR "y" OR "z"'  # quoted: no FTS5 syntax survives
    assert fts_query("Who is the keeper of the lighthouse?") == '"keeper" OR "lighthouse"'
    assert fts_query("Who is it?") == '"who" OR "is" OR "it"'  # nothing else to search for


def test_deletes_update_fts_and_revision(catalog: Catalog) -> None:
    before = catalog.revision()
    with catalog.transaction():
        removed = catalog.delete_source("s1")
    assert sorted(cid for _, cid in removed) == ["a", "c"]
    assert catalog.revision() == before + 1 and catalog.last_commit == (before, before + 1)
    assert catalog.keyword_search("apples", 5) == []
    assert catalog.document("s1") is None and catalog.count() == 1


def test_failed_transaction_rolls_back(catalog: Catalog) -> None:
    before = (catalog.revision(), catalog.count())
    with pytest.raises(RuntimeError), catalog.transaction():
        catalog.delete_source("s1")
        raise RuntimeError("crash mid-write")
    assert (catalog.revision(), catalog.count()) == before
    assert catalog.keyword_search("apples", 5)
