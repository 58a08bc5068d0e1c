"""An LRU text -> vector cache around an Embeddings: the fix profile_answer.py demonstrates.

One answer embeds the question twice (retrieve, then focus) and the passage sentences twice
(focus, then verify); a chat re-embeds the same passages every turn. Cached, each text is
embedded once. Proposed for ingest/embed.py's SentenceEmbeddings; kept here until it moves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings


class CachedEmbeddings(Embeddings):
    """Embeds only texts it has not seen (in one batch); the newest `size` vectors are kept."""

    def __init__(self, inner: Any, size: int = 20_000) -> None:
        self.inner = inner
        self.size = size
        self.model_name = getattr(inner, "model_name", type(inner).__name__)
        self.dim = getattr(inner, "dim", None)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def tokenizer(self) -> Any:
        return getattr(self.inner, "tokenizer", None)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if missing:
            fresh = np.asarray(self.inner.embed_documents(missing), dtype=np.float32)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted meanwhile by another thread: embed it again
                    vector = np.asarray(self.inner.embed_query(text), dtype=np.float32)
                else:
                    self._cache.move_to_end(text)
                rows.append(vector)
        return np.vstack(rows) if rows else np.zeros((0, self.dim or 0), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()
