"""Pipeline: paths or (id, text) records -> load -> chunk -> embed (batched) -> KB, incrementally.

Documents are keyed by source (absolute path or record id) + content hash: unchanged ones are
skipped before parsing, changed ones replaced, and a new file whose bytes the KB already holds
under another path is reported, not added twice. Every bad document is reported and skipped; each
batch of documents is written in one catalog transaction, so a crash loses at most that batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from ingest.catalog import DocumentRow
from ingest.chunk import TokenSpans, chunk_document, hf_token_spans, regex_token_spans
from ingest.embed import document_embedder, embed_texts
from ingest.kb import DocumentWrite, KnowledgeBase
from ingest.load import LoadedDoc, doc_hash_of, load_text_record, parse_bytes, read_bytes
from ingest.manifest import now_iso, write_manifest
from ingest.uploads import UPLOAD_SCHEME
from ingest.walk import Walk, walk_paths
from rag_app.errors import IngestError
from rag_app.records import Chunk


class FileIssue(BaseModel):
    source: str
    reason: str = Field(description="One line: why the file is not in the KB.")


class Duplicate(FileIssue):
    """A new file whose content (sha256 of its bytes) the KB already holds under another path."""

    same_as: str = Field(description="The source already in the KB with these bytes.")


def duplicate_of(source: str, same_as: str) -> Duplicate:
    return Duplicate(source=source, reason=f"already in the KB as {same_as}", same_as=same_as)


class IngestSummary(BaseModel):
    """What one ingest run did; `rag ingest --json` prints exactly this."""

    kb: str = ""
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[FileIssue] = Field(default_factory=list)
    skipped: list[FileIssue] = Field(default_factory=list)
    duplicates: list[Duplicate] = Field(default_factory=list)
    chunks_written: int = 0
    seconds: float = 0.0

    def in_kb(self) -> int:
        """Documents of this run that are in the KB afterwards (the CLI's exit code rests on it)."""
        return self.added + self.changed + self.unchanged + len(self.duplicates)


Status = Literal["added", "changed"]
Verdict = Literal["unchanged", "duplicate", "added", "changed"]


@dataclass
class _Pending:
    status: Status
    row: DocumentRow
    chunks: list[Chunk]


def token_spans_for(embeddings: Any) -> TokenSpans:
    """The embedding model's own tokenizer when it has a fast one, else words + punctuation."""
    own = getattr(embeddings, "token_spans", None)
    if callable(own):  # the ONNX runtime's: same spans, no transformers import
        return own  # type: ignore[no-any-return]
    tokenizer = getattr(embeddings, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "is_fast", False):
        return hf_token_spans(tokenizer)
    return regex_token_spans


def embedding_text(chunk: Chunk) -> str:
    """What is embedded: the heading path gives a chunk its context (the stored text is exact)."""
    return f"{chunk.section}\n{chunk.text}" if chunk.headings else chunk.text


def file_issue(source: str, reason: str) -> FileIssue:
    # one line per file: library messages can span lines (their full text goes to the log)
    return FileIssue(source=source, reason=" ".join(reason.split()))


def check_document(
    kb: KnowledgeBase, source: str, doc_hash: str, queued: Iterable[tuple[str, str]], dedupe: bool
) -> tuple[Verdict, str | None]:
    """What to do with a document before it is parsed: (verdict, the source it duplicates).

    `queued` holds the (source, doc_hash) of this run's documents not yet in the catalog.
    """
    existing = kb.catalog.document(source)
    if existing and existing.doc_hash == doc_hash and existing.signature == kb.signature():
        return "unchanged", None
    same_as = None if existing or not dedupe else same_content(kb, doc_hash, queued)
    if same_as is not None:
        return "duplicate", same_as
    return ("changed" if existing else "added"), None


def same_content(kb: KnowledgeBase, doc_hash: str, queued: Iterable[tuple[str, str]]) -> str | None:
    """The file (in the KB, or queued in this run) that already has these bytes.

    A KB document whose file is gone does not count: that is a move, and the new path is
    ingested (`--prune` then drops the old one instead of leaving no copy at all).
    """
    in_run = [source for source, digest in queued if digest == doc_hash]
    stored = [
        s
        for s in kb.catalog.sources_with_hash(doc_hash)
        if s.startswith(UPLOAD_SCHEME) or Path(s).is_file()  # uploads kept in the database
    ]
    return (in_run + stored)[0] if in_run or stored else None


def load_chunks(
    load: Callable[[], LoadedDoc], spans: TokenSpans, size: int, overlap: int
) -> list[Chunk]:
    """Load and chunk one document; every problem (loader errors included) is an IngestError."""
    try:
        chunks = chunk_document(load(), spans, size, overlap)
    except IngestError:
        raise
    except Exception as exc:  # a library bug on one odd file must not abort the batch
        raise IngestError(f"could not be read: {type(exc).__name__}: {exc}") from exc
    if not chunks:
        raise IngestError("no text could be extracted")
    return chunks


def write_batch(
    kb: KnowledgeBase, summary: IngestSummary, docs: Sequence[tuple[Status, DocumentWrite]]
) -> int:
    """Write documents (chunks embedded) in ONE catalog transaction and count them in summary."""
    written = kb.write_documents([w for _, w in docs])
    summary.chunks_written += written
    for status, _ in docs:
        setattr(summary, status, getattr(summary, status) + 1)
    return written


def walk_summary(walk: Walk, kb: str) -> IngestSummary:
    """The report of a walk with no file to load (nothing is opened or created)."""
    summary = IngestSummary(kb=kb)
    summary.skipped = [FileIssue(source=s, reason=r) for s, r in walk.skipped]
    summary.failed = [FileIssue(source=s, reason=r) for s, r in walk.missing]
    return summary


class _Run:
    """State of one ingest run: pending documents, the summary and the progress bars."""

    def __init__(
        self, kb: KnowledgeBase, total: int | None, show_progress: bool, dedupe: bool = False
    ) -> None:
        from tqdm import tqdm

        self.kb = kb
        self.dedupe = dedupe
        self.summary = IngestSummary(kb=kb.name)
        self.pending: list[_Pending] = []
        self.spans = token_spans_for(kb.embeddings)
        # documents may be embedded by a faster variant of the KB's model (embedding_int8)
        self.embeddings = document_embedder(kb.embeddings, kb.settings)
        # Chunks embedded per encode call: large enough for sentence-transformers' length sorting
        # to cut padding, small enough that a crash loses little (one transaction per flush).
        self.batch_chunks = max(256, 16 * kb.settings.embedding_batch_size)
        hide = not show_progress
        self.files = tqdm(total=total, desc="files", unit="file", disable=hide, position=0)
        self.chunks = tqdm(desc="chunks", unit="chunk", disable=hide, position=1)

    def fail(self, source: str, reason: str) -> None:
        self.summary.failed.append(file_issue(source, reason))

    def offer(self, source: str, doc_hash: str, load: Callable[[], LoadedDoc]) -> None:
        """Queue one document unless unchanged; loader errors become reported failures."""
        if any(p.row.source == source for p in self.pending):
            self.flush()  # the same source twice in one run: write the first before comparing
        queued = [(p.row.source, p.row.doc_hash) for p in self.pending]
        verdict, same_as = check_document(self.kb, source, doc_hash, queued, self.dedupe)
        if verdict == "unchanged":
            self.summary.unchanged += 1
            return
        if verdict == "duplicate":
            assert same_as is not None
            self.summary.duplicates.append(duplicate_of(source, same_as))
            return
        settings = self.kb.settings
        try:
            chunks = load_chunks(load, self.spans, settings.chunk_size, settings.chunk_overlap)
        except IngestError as exc:
            return self.fail(source, str(exc))
        row = DocumentRow(source, doc_hash, self.kb.signature(), len(chunks), now_iso())
        self.pending.append(_Pending(verdict, row, chunks))
        if sum(len(p.chunks) for p in self.pending) >= self.batch_chunks:
            self.flush()

    def flush(self) -> None:
        """Embed all pending chunks at once, then write their documents in one transaction."""
        if not self.pending:
            return
        texts = [embedding_text(c) for p in self.pending for c in p.chunks]
        vectors = embed_texts(self.embeddings, texts)
        docs: list[tuple[Status, DocumentWrite]] = []
        offset = 0
        for p in self.pending:
            n = len(p.chunks)
            docs.append((p.status, DocumentWrite(p.row, p.chunks, vectors[offset : offset + n])))
            offset += n
        write_batch(self.kb, self.summary, docs)
        self.chunks.update(len(texts))
        self.pending = []

    def finish(self, started: float) -> IngestSummary:
        self.flush()
        self.kb.persist()
        self.files.close()
        self.chunks.close()
        self.summary.seconds = round(time.perf_counter() - started, 3)
        return self.summary


def sync_manifest(kb: KnowledgeBase) -> None:
    """Record the chunker settings now in force (changed documents get re-chunked)."""
    m = kb.manifest
    if (m.chunk_size, m.chunk_overlap) != (kb.settings.chunk_size, kb.settings.chunk_overlap):
        size, overlap = kb.settings.chunk_size, kb.settings.chunk_overlap
        kb.manifest = m.model_copy(update={"chunk_size": size, "chunk_overlap": overlap})
        write_manifest(kb.path, kb.manifest)


def _offer_file(run: _Run, path: Path) -> None:
    source = str(path)
    try:
        data = read_bytes(path, run.kb.settings.max_file_mb)
    except IngestError as exc:
        return run.fail(source, str(exc))
    run.offer(source, doc_hash_of(data), lambda: parse_bytes(source, path.suffix, data))


def prune_missing(kb: KnowledgeBase, roots: Sequence[Path]) -> int:
    """Remove documents under the ingested roots whose files no longer exist."""
    removed = 0
    prefixes = [str(r) + os.sep for r in roots if r.is_dir()]
    exact = {str(r) for r in roots}
    for doc in kb.sources():
        inside = doc.source in exact or any(doc.source.startswith(p) for p in prefixes)
        if inside and not Path(doc.source).exists():
            kb.remove_source(doc.source)
            removed += 1
    return removed


def ingest_paths(
    paths: Sequence[Path],
    kb: KnowledgeBase,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    show_progress: bool = False,
) -> IngestSummary:
    """Ingest files and folders (recursively) into `kb`; see IngestSummary for what is reported."""
    return ingest_walk(walk_paths(paths, include, exclude), kb, prune, show_progress)


def ingest_walk(
    walk: Walk, kb: KnowledgeBase, prune: bool = False, show_progress: bool = False
) -> IngestSummary:
    """Ingest the files of a walk (`rag ingest` walks first, to open no KB for nothing)."""
    started = time.perf_counter()
    with kb.writer_lock():
        sync_manifest(kb)
        run = _Run(kb, len(walk.files), show_progress, dedupe=True)
        run.summary = walk_summary(walk, kb.name)
        for path in walk.files:
            _offer_file(run, path)
            run.files.update(1)
        summary = run.finish(started)
        if prune:
            summary.removed = prune_missing(kb, walk.roots)
            kb.persist()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def ingest_blob(source: str, data: bytes, kb: KnowledgeBase) -> IngestSummary:
    """Ingest one document given as bytes under `source` (an upload kept in the database, whose
    source names no local file); its type comes from the suffix of `source`."""
    started = time.perf_counter()
    with kb.writer_lock():
        sync_manifest(kb)
        run = _Run(kb, 1, False, dedupe=True)
        max_mb = kb.settings.max_file_mb
        if len(data) > max_mb * 1024 * 1024:
            run.fail(source, f"file is {len(data) / 1048576:.1f} MB, above max_file_mb={max_mb:g}")
        else:
            suffix = PurePosixPath(source).suffix
            run.offer(source, doc_hash_of(data), lambda: parse_bytes(source, suffix, data))
        return run.finish(started)


def ingest_texts(
    records: Iterable[tuple[str, str]], kb: KnowledgeBase, show_progress: bool = False
) -> IngestSummary:
    """Ingest (source id, text) records as documents (eval indexes SQuAD/BEIR this way)."""
    started = time.perf_counter()
    with kb.writer_lock():
        sync_manifest(kb)
        # no dedupe: records keep their ids even when texts repeat (eval's qrels name the ids)
        run = _Run(kb, None, show_progress)
        for source, text in records:
            digest = doc_hash_of(text.encode("utf-8"))
            run.offer(source, digest, lambda s=source, t=text: load_text_record(s, t))  # type: ignore[misc]
            run.files.update(1)
        return run.finish(started)
