"""Eval knowledge bases: index a dataset's own documents once (named by file hash), reuse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from eval.datasets import Dataset
from rag_app.errors import KnowledgeBaseError
from rag_app.records import Chunk
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from ingest.kb import KnowledgeBase

Retriever = Literal["bm25", "dense", "hybrid"]


def ensure_kb(
    dataset: Dataset,
    settings: Settings,
    name: str | None = None,
    show_progress: bool = True,
    embeddings: Embeddings | None = None,
) -> KnowledgeBase:
    """Open the dataset's KB, creating it or finishing an interrupted build (incremental)."""
    from ingest.kb import list_kbs, open_kb
    from ingest.pipeline import ingest_texts

    name = name or dataset.kb_name
    # An existing KB built with another embedding model raises: never rebuild it silently.
    create = name not in list_kbs(settings)
    kb = open_kb(name, settings, create=create, embeddings=embeddings)
    if not dataset.documents:
        return kb
    indexed = {info.source for info in kb.sources()}
    if not set(dataset.documents) <= indexed:
        todo = [(s, t) for s, t in dataset.documents.items() if s not in indexed]
        summary = ingest_texts(todo, kb, show_progress=show_progress)
        if summary.failed:
            first = summary.failed[0]
            raise KnowledgeBaseError(
                f"building KB {name!r} from {dataset.path}: {len(summary.failed)} documents "
                f"failed, first {first}; fix the dataset or delete the KB folder {kb.path}"
            )
    return kb


def ranked_sources(
    question: str, kb: KnowledgeBase, settings: Settings, retriever: Retriever, depth: int = 40
) -> list[str]:
    """Source ids in rank order for one retriever (chunks of one source are deduplicated later)."""
    from rag_app.answering.retrieve import retrieve

    if retriever == "bm25":
        ranked: list[Chunk] = [c for c, _ in kb.keyword_search(question, depth)]
    elif retriever == "dense":
        ranked = [c for c, _ in kb.dense_search(question, depth)]
    else:
        wide = settings.model_copy(update={"fetch_k": max(settings.fetch_k, depth)})
        ranked = [h.chunk for h in retrieve(question, kb, wide, k=depth)]
    return [c.source for c in ranked]
