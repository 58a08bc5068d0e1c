"""Baseline pipeline: stock LangChain FAISS + a plain "stuff" prompt, same chunks and model."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from rag_app.records import ABSTAIN_PHRASE, Answer, Chunk, Hit, Timings, Usage

if TYPE_CHECKING:
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from eval.datasets import Dataset
    from rag_app.settings import Settings

# LangChain's own RAG tutorial prompt (hub "rlm/rag-prompt"), kept verbatim: the baseline is what
# a user gets from the stock recipe. SEE: https://smith.langchain.com/hub/rlm/rag-prompt
STUFF_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved "
    "context to answer the question. If you don't know the answer, just say that you don't know. "
    "Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context} \nAnswer:"
)
_DONT_KNOW = ("don't know", "do not know", "cannot answer", "can't answer", "not provided")


def dataset_chunks(dataset: Dataset, embeddings: Embeddings, settings: Settings) -> list[Chunk]:
    """The dataset's documents cut by the ingest chunker with the same settings as our KB."""
    from ingest.chunk import chunk_document
    from ingest.load import LoadedDoc
    from ingest.pipeline import token_spans_for

    spans = token_spans_for(embeddings)
    chunks: list[Chunk] = []
    for source, text in dataset.documents.items():
        doc = LoadedDoc(
            source=source, text=text, doc_hash=hashlib.sha256(text.encode()).hexdigest()
        )
        chunks.extend(chunk_document(doc, spans, settings.chunk_size, settings.chunk_overlap))
    return chunks


def build_store(chunks: list[Chunk], embeddings: Embeddings) -> FAISS:
    """LangChain's stock in-memory FAISS store (never saved: its save format is pickle)."""
    from langchain_community.vectorstores import FAISS

    return FAISS.from_texts(
        [c.text for c in chunks], embeddings, metadatas=[c.to_metadata() for c in chunks]
    )


class StuffPipeline:
    """retriever | stuff prompt | chat model, returning our Answer record for identical scoring."""

    def __init__(self, store: FAISS, llm: BaseChatModel, k: int = 4):
        self.store = store
        self.llm = llm
        self.k = k

    def search(self, question: str, k: int) -> list[Chunk]:
        docs = self.store.similarity_search(question, k=k)
        return [Chunk.from_metadata(d.page_content, dict(d.metadata)) for d in docs]

    def ask(self, question: str) -> Answer:
        from langchain_core.prompts import ChatPromptTemplate

        started = time.perf_counter()
        docs = self.store.similarity_search_with_score(question, k=self.k)
        retrieval_s = time.perf_counter() - started
        context = "\n\n".join(d.page_content for d, _ in docs)
        prompt = ChatPromptTemplate.from_messages([("human", STUFF_PROMPT)])
        reply = (prompt | self.llm).invoke({"question": question, "context": context})
        text = str(reply.content).strip()
        meta: dict[str, Any] = getattr(reply, "usage_metadata", None) or {}
        hits = [
            # IndexFlatL2 returns squared L2; on normalised vectors cosine = 1 - d / 2.
            Hit(
                chunk=Chunk.from_metadata(d.page_content, dict(d.metadata)),
                score=-float(dist),
                dense_score=1.0 - float(dist) / 2.0,
                dense_rank=i,
            )
            for i, (d, dist) in enumerate(docs, 1)
        ]
        abstained = not text or any(p in text.lower() for p in _DONT_KNOW)
        return Answer(
            question=question,
            standalone_question=question,
            text=ABSTAIN_PHRASE if abstained else text,
            abstained=abstained,
            mode="direct",
            prompt_name="langchain-stuff",
            hits=hits,
            usage=Usage(
                prompt_tokens=int(meta.get("input_tokens", 0)),
                completion_tokens=int(meta.get("output_tokens", 0)),
            ),
            timings=Timings(retrieval_s=retrieval_s, total_s=time.perf_counter() - started),
        )
