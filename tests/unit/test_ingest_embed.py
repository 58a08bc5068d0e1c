"""SentenceEmbeddings' text->vector cache: each text goes through the model once, results stay
identical, the cache stays bounded. The model is a counting stand-in with SentenceTransformer's
`encode` signature; the real MiniLM runs in the integration tests."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from ingest.embed import SentenceEmbeddings


class CountingModel:
    """Deterministic 8-d unit vectors per text; records every batch it is asked to encode."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 8

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.batches.append(list(texts))
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_each_text_is_encoded_once_and_vectors_do_not_change() -> None:
    model = CountingModel()
    emb = SentenceEmbeddings(model, "counting", batch_size=4)
    first = emb.embed_array(["a", "b", "a"])
    again = emb.embed_array(["b", "c", "a"])
    assert model.batches == [["a", "b"], ["c"]]  # duplicates and known texts skipped
    assert np.array_equal(first[0], first[2]) and np.array_equal(first[1], again[0])
    assert np.array_equal(again[2], first[0])
    assert (emb.requested, emb.encoded) == (6, 3)
    assert np.allclose(emb.embed_query("c"), again[1])


def test_cache_is_bounded_and_keeps_the_most_recent() -> None:
    model = CountingModel()
    emb = SentenceEmbeddings(model, "counting", batch_size=4, cache_size=2)
    emb.embed_array(["a", "b"])
    emb.embed_array(["a"])  # a is now the most recent
    emb.embed_array(["c"])  # evicts b
    emb.embed_array(["a", "b"])
    assert model.batches == [["a", "b"], ["c"], ["b"]]


def test_cache_size_zero_encodes_every_time() -> None:
    model = CountingModel()
    emb = SentenceEmbeddings(model, "counting", batch_size=4, cache_size=0)
    emb.embed_array(["a"])
    emb.embed_array(["a"])
    assert model.batches == [["a"], ["a"]]


def test_returned_arrays_are_copies_callers_cannot_corrupt_the_cache() -> None:
    emb = SentenceEmbeddings(CountingModel(), "counting", batch_size=4)
    vectors = emb.embed_array(["a"])
    vectors[:] = 0.0
    assert np.linalg.norm(emb.embed_array(["a"])[0]) > 0.99
