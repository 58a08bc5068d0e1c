"""Ingest on Ray Data: plan (driver) -> load + chunk (tasks) -> embed (actor pool) -> KB (driver).

The driver hashes every file and makes ingest/pipeline.py's checks, so unchanged files and
duplicates never reach Ray. The rest travel as plain data (a path or a text; chunks as JSON,
vectors as bytes): tasks parse and chunk, a pool of actors that each load the embedder once
embeds. Only the driver writes, through the KB's `write_documents` (one transaction per batch,
documents replaced by source), so a batch Ray redoes after a worker died never adds a document
twice. Ray itself is started or joined by ingest/ray_session.py.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.catalog import DocumentRow
from ingest.chunk import TokenSpans
from ingest.embed import (
    document_embedder,
    embed_texts,
    gpu_embedder,
    limit_threads,
    load_embedder,
)
from ingest.kb import DocumentWrite, KnowledgeBase
from ingest.load import LoadedDoc, doc_hash_of, load_text_record, parse_bytes, read_bytes
from ingest.manifest import now_iso
from ingest.pipeline import (
    IngestSummary,
    Status,
    check_document,
    duplicate_of,
    embedding_text,
    file_issue,
    load_chunks,
    prune_missing,
    sync_manifest,
    token_spans_for,
    walk_summary,
    write_batch,
)
from ingest.ray_session import plan_workers, ray_session, why
from ingest.walk import Walk
from rag_app.errors import IngestError
from rag_app.records import Chunk
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

# Builds the embedder inside each embedding actor; it is pickled to them, so plain data only.
EmbedderFactory = Callable[[], "Embeddings"]
RETRIES = 3  # per parse task (max_retries) and per embedding actor (restarts, task retries)
DOCS_PER_BLOCK = 16  # documents per parse task, at most (fewer when there are few documents)


@dataclass(frozen=True)
class DefaultEmbedder:
    """The KB's model as `rag ingest` embeds documents; on the GPU when the actor holds one."""

    settings: Settings

    def __call__(self) -> Embeddings:
        import ray

        if not ray.get_gpu_ids():
            return document_embedder(load_embedder(self.settings), self.settings)
        return gpu_embedder(self.settings)


@dataclass
class _Plan:
    """The documents the driver sends to Ray (one item each) and what each will count as."""

    summary: IngestSummary
    items: list[dict[str, Any]] = field(default_factory=list)
    status: list[Status] = field(default_factory=list)
    queued: list[tuple[str, str]] = field(default_factory=list)  # (source, doc_hash)

    def offer(
        self, kb: KnowledgeBase, source: str, doc_hash: str, dedupe: bool, **what: str
    ) -> None:
        verdict, same_as = check_document(kb, source, doc_hash, self.queued, dedupe)
        if verdict == "unchanged":
            self.summary.unchanged += 1
        elif verdict == "duplicate":
            self.summary.duplicates.append(duplicate_of(source, str(same_as)))
        else:
            self.items.append({"doc": len(self.items), "source": source, "path": "", "text": ""})
            self.items[-1].update(what)
            self.status.append(verdict)
            self.queued.append((source, doc_hash))


def chunk_item(
    item: dict[str, Any], spans: TokenSpans, size: int, overlap: int, max_mb: float
) -> list[dict[str, Any]]:
    """Parse stage (a Ray task): one planned document -> a row per chunk, or one error row."""
    source, path = str(item["source"]), str(item["path"])

    def load() -> LoadedDoc:
        if path:
            return parse_bytes(source, Path(path).suffix, read_bytes(Path(path), max_mb))
        return load_text_record(source, str(item["text"]))

    row = {"doc": int(item["doc"]), "source": source, "total": 0, "error": "", "chunk": ""}
    try:
        chunks = load_chunks(load, spans, size, overlap)
    except IngestError as exc:
        return [row | {"error": str(exc), "text": ""}]
    return [
        row | {"total": len(chunks), "chunk": c.model_dump_json(), "text": embedding_text(c)}
        for c in chunks
    ]


class EmbedActor:
    """Embedding stage (an actor pool): loads the embedder once, embeds batches of chunk rows."""

    def __init__(self, factory: EmbedderFactory, settings: Settings, threads: int) -> None:
        if threads > 0:  # actors sharing a machine: each runtime gets its share of the cores
            limit_threads(settings.model_copy(update={"answer_threads": threads}))
        self.embeddings = factory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["error"] == ""
        vectors = iter(embed_texts(self.embeddings, [str(t) for t in batch["text"][ok]]))
        out = {k: v for k, v in batch.items() if k != "text"}
        packed = [np.asarray(next(vectors), np.float32).tobytes() if o else b"" for o in ok]
        out["vector"] = np.array(packed, dtype=object)
        return out


class _Collector:
    """Driver side: chunk rows back into documents, written in batches (one transaction each)."""

    def __init__(self, kb: KnowledgeBase, plan: _Plan) -> None:
        self.kb, self.plan, self.summary = kb, plan, plan.summary
        self.parts: dict[int, dict[int, tuple[Chunk, np.ndarray]]] = {}
        self.done: set[int] = set()
        self.ready: list[tuple[Status, DocumentWrite]] = []
        self.batch_chunks = max(256, 16 * kb.settings.embedding_batch_size)

    def add(self, batch: dict[str, np.ndarray]) -> None:
        for i, doc in enumerate(int(d) for d in batch["doc"]):
            if doc in self.done:
                continue  # a row seen before (a redone batch): its document is complete
            if batch["error"][i]:
                self.done.add(doc)
                issue = file_issue(str(batch["source"][i]), str(batch["error"][i]))
                self.summary.failed.append(issue)
                continue
            chunk = Chunk.model_validate_json(batch["chunk"][i])
            vector = np.frombuffer(batch["vector"][i], dtype=np.float32)
            if vector.shape[0] != self.kb.manifest.dimension:
                raise IngestError(
                    f"the Ray embedder gives {vector.shape[0]}-d vectors; knowledge base "
                    f"{self.kb.name} holds {self.kb.manifest.dimension}-d ones"
                )
            parts = self.parts.setdefault(doc, {})
            parts[chunk.position] = (chunk, vector)
            if len(parts) == int(batch["total"][i]):
                self.complete(doc)

    def complete(self, doc: int) -> None:
        by_position = self.parts.pop(doc)
        parts = [by_position[p] for p in sorted(by_position)]
        chunks = [c for c, _ in parts]
        row = DocumentRow(chunks[0].source, chunks[0].doc_hash, self.kb.signature(), 0, now_iso())
        vectors = np.vstack([v for _, v in parts])
        self.ready.append((self.plan.status[doc], DocumentWrite(row, chunks, vectors)))
        self.done.add(doc)
        if sum(len(w.chunks) for _, w in self.ready) >= self.batch_chunks:
            self.flush()

    def flush(self) -> None:
        if self.ready:
            write_batch(self.kb, self.summary, self.ready)
            self.ready = []

    def finish(self) -> None:
        self.flush()
        for item in self.plan.items:  # a guard: Ray returns a row for every item it was given
            if item["doc"] not in self.done:
                reason = "the Ray pipeline returned no result for it"
                self.summary.failed.append(file_issue(item["source"], reason))


def build_dataset(
    kb: KnowledgeBase, plan: _Plan, workers: int, capped: bool, embedder: EmbedderFactory | None
) -> Any:
    """The Ray Data pipeline over the planned documents: parse tasks, then the embedding pool.

    Fault tolerance is Ray's own: a parse task whose worker dies runs again (max_retries); an
    embedding actor whose process dies is restarted (max_restarts) and its batch redone
    (max_task_retries). Past those limits the run fails; the next run redoes what is missing.
    """
    import ray

    settings = kb.settings
    n, resources, threads = plan_workers(workers, capped)
    if embedder is None:  # make the int8 variant here once, not in every actor at once
        document_embedder(kb.embeddings, settings)
    # many small blocks: chunks stream to the embedders early and a retry redoes little
    blocks = min(len(plan.items), max(8 * n, -(-len(plan.items) // DOCS_PER_BLOCK)))
    parse = partial(
        chunk_item,
        spans=token_spans_for(kb.embeddings),
        size=settings.chunk_size,
        overlap=settings.chunk_overlap,
        max_mb=settings.max_file_mb,
    )
    return (
        ray.data.from_items(plan.items, override_num_blocks=blocks)
        .flat_map(parse, max_retries=RETRIES)
        .map_batches(
            EmbedActor,
            fn_constructor_args=(embedder or DefaultEmbedder(settings), settings, threads),
            batch_size=4 * settings.embedding_batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n),
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
            **resources,
        )
    )


def _run(
    kb: KnowledgeBase, plan: _Plan, workers: int, address: str, embedder: EmbedderFactory | None
) -> None:
    """Send the planned documents through Ray and write what comes back (in the driver)."""
    collector = _Collector(kb, plan)
    with warnings.catch_warnings():
        # Ray 2.60 deprecates per-operator remote args (max_restarts, ...) for 2.64, with no
        # replacement yet: pyproject's `ray` extra stays below 2.64.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
        dataset = build_dataset(kb, plan, workers, not address, embedder)
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                collector.add(batch)
        except Exception as exc:
            if not type(exc).__module__.startswith("ray"):
                raise
            raise IngestError(
                f"the Ray pipeline failed ({why(exc)}); the documents written before it are "
                "kept: run again to finish"
            ) from exc
    collector.finish()


def _ingest(
    kb: KnowledgeBase,
    plan: _Plan,
    workers: int,
    address: str,
    show_progress: bool,
    embedder: EmbedderFactory | None,
    stderr_log: Path | None = None,
) -> None:
    if plan.items:  # unchanged and duplicate documents only: no Ray at all
        with ray_session(address, show_progress, stderr_log):
            _run(kb, plan, workers, address, embedder)
    kb.persist()


def ingest_walk_ray(
    walk: Walk,
    kb: KnowledgeBase,
    prune: bool = False,
    show_progress: bool = False,
    *,
    workers: int | None = None,
    address: str | None = None,
    embedder: EmbedderFactory | None = None,
    stderr_log: Path | None = None,
) -> IngestSummary:
    """ingest_walk (the same checks and report) with parsing and embedding on Ray: `rag ingest
    --ray`. workers and address default to settings.ray_workers and settings.ray_address;
    `embedder` builds each actor's embedder (default: the KB's model, as `rag ingest` embeds);
    `stderr_log` receives this process's stderr while Ray runs (see ray_session)."""
    started = time.perf_counter()
    settings = kb.settings
    with kb.writer_lock():
        sync_manifest(kb)
        plan = _Plan(walk_summary(walk, kb.name))
        for path in walk.files:
            try:
                data = read_bytes(path, settings.max_file_mb)
            except IngestError as exc:
                plan.summary.failed.append(file_issue(str(path), str(exc)))
                continue
            plan.offer(kb, str(path), doc_hash_of(data), dedupe=True, path=str(path))
        n = settings.ray_workers if workers is None else workers
        where = settings.ray_address if address is None else address
        _ingest(kb, plan, n, where, show_progress, embedder, stderr_log)
        if prune:
            plan.summary.removed = prune_missing(kb, walk.roots)
            kb.persist()
    plan.summary.seconds = round(time.perf_counter() - started, 3)
    return plan.summary


def ingest_texts_ray(
    records: Iterable[tuple[str, str]],
    kb: KnowledgeBase,
    workers: int = 0,
    show_progress: bool = False,
    *,
    address: str | None = None,
    embedder: EmbedderFactory | None = None,
) -> IngestSummary:
    """ingest_texts on Ray: (source id, text) records as documents, e.g. for a benchmark against
    the single-process path (workers: embedding actors, 0 = as ray_workers=0 says). A source id
    given twice is ingested once, with its last text. Each call starts and stops a local Ray
    unless this process initialised one already (ray.init), which calls then share."""
    started = time.perf_counter()
    with kb.writer_lock():
        sync_manifest(kb)
        plan = _Plan(IngestSummary(kb=kb.name))
        for source, text in dict(records).items():
            plan.offer(kb, source, doc_hash_of(text.encode("utf-8")), dedupe=False, text=text)
        where = kb.settings.ray_address if address is None else address
        _ingest(kb, plan, workers, where, show_progress, embedder)
    plan.summary.seconds = round(time.perf_counter() - started, 3)
    return plan.summary
