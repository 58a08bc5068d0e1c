"""Embeddings base: the text->vector LRU cache and normalisation shared by both runtimes
(sentence-transformers in ingest/embed.py, onnxruntime in ingest/onnx_embed.py)."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

# One answer embeds the question twice (retrieve, focus) and the passage sentences twice (focus,
# verify), and a chat re-reads the same passages every turn: bench/profile_answer.py measured
# the cache cutting embedding time per answer by more than half. 20k vectors are ~30 MB.
VECTOR_CACHE_SIZE = 20_000


class CachedEmbeddings(Embeddings):
    """LangChain Embeddings with batched, L2-normalised float32 output and an LRU cache, so a
    text is embedded once per process however often it is asked for. Subclasses encode."""

    def __init__(
        self, model_name: str, batch_size: int, dim: int, cache_size: int | None = None
    ) -> None:
        self.model_name = model_name  # portable name recorded in KB manifests
        self.batch_size = batch_size
        self.dim = dim
        self.cache_size = VECTOR_CACHE_SIZE if cache_size is None else cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.requested = 0  # texts asked for ...
        self.encoded = 0  # ... and those that went through the model (the rest were cached)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32 array; texts not seen before are encoded together in batches."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._cache_lock:
            self.requested += len(texts)
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            fresh = self._encode(missing)
            known.update(zip(missing, fresh, strict=True))
        with self._cache_lock:
            for text, vector in known.items():
                self._vectors[text] = vector
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.cache_size:
                self._vectors.popitem(last=False)
        return np.vstack([known[t] for t in texts])

    def with_cache(self, cache_size: int) -> CachedEmbeddings:
        """The same model behind a new, empty cache of this size (benchmarks compare caches)."""
        twin = copy.copy(self)
        twin.cache_size = cache_size
        twin._vectors = OrderedDict()
        twin._cache_lock = threading.Lock()
        twin.requested = twin.encoded = 0
        return twin

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


def model_dimension(model: Any) -> int:
    dimension = getattr(model, "get_embedding_dimension", None)  # renamed in s-t 6
    return int((dimension or model.get_sentence_embedding_dimension)())


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms
