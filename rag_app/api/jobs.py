"""Ingest jobs: uploads and re-ingests run in a background thread; clients poll their progress.

Files are ingested one at a time with `ingest_paths`, so a job reports progress per file and
one bad file never stops the rest; `report` is the same IngestSummary `rag ingest --json` prints.
Jobs run one after another (one worker): ingestion is CPU-bound and a KB takes one writer.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from ingest.pipeline import FileIssue, IngestSummary
from rag_app.errors import RagError

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase

JobStatus = Literal["queued", "running", "done", "failed"]
JOBS_KEPT = 500


class FileReport(BaseModel):
    """What happened to one file of a job."""

    name: str
    source: str
    status: Literal[
        "pending", "added", "changed", "unchanged", "duplicate", "failed", "skipped"
    ] = "pending"
    chunks: int = 0
    reason: str = ""


class Job(BaseModel):
    id: str
    kb: str
    owner: str = Field(exclude=True)  # the key that started it (only it and admins see it)
    status: JobStatus = "queued"
    files_total: int
    files_done: int = 0
    files: list[FileReport]
    report: IngestSummary
    error: str = ""
    created_at: float
    finished_at: float | None = None


def merge(total: IngestSummary, part: IngestSummary) -> None:
    total.added += part.added
    total.changed += part.changed
    total.unchanged += part.unchanged
    total.removed += part.removed
    total.failed += part.failed
    total.skipped += part.skipped
    total.duplicates += part.duplicates
    total.chunks_written += part.chunks_written
    total.seconds = round(total.seconds + part.seconds, 3)


def _file_status(summary: IngestSummary) -> tuple[str, str]:
    found = ((summary.failed, "failed"), (summary.skipped, "skipped"))
    for issues, label in (*found, (summary.duplicates, "duplicate")):
        if issues:
            return label, issues[0].reason
    for count, label in ((summary.added, "added"), (summary.changed, "changed")):
        if count:
            return label, ""
    if summary.unchanged:
        return "unchanged", ""
    return "failed", "no text could be read from it"


class JobRegistry:
    """Jobs by id, run by one worker thread."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")
        self._stopping = threading.Event()

    def start(
        self,
        kb: KnowledgeBase,
        paths: list[Path],
        owner: str,
        on_failed_file: Callable[[Path], None] | None = None,
    ) -> Job:
        """Queue an ingest of `paths` into `kb`; `on_failed_file` cleans up a rejected upload."""
        files = [FileReport(name=p.name, source=str(p)) for p in paths]
        job = Job(
            id=f"job-{secrets.token_hex(6)}",
            kb=kb.name,
            owner=owner,
            files_total=len(paths),
            files=files,
            report=IngestSummary(kb=kb.name),
            created_at=time.time(),
        )
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > JOBS_KEPT:
                self._jobs.pop(next(iter(self._jobs)))
        self._pool.submit(self._run, job, kb, paths, on_failed_file)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all_jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def _run(
        self,
        job: Job,
        kb: KnowledgeBase,
        paths: list[Path],
        on_failed_file: Callable[[Path], None] | None,
    ) -> None:
        from ingest.pipeline import ingest_paths

        job.status = "running"
        try:
            for report, path in zip(job.files, paths, strict=True):
                if self._stopping.is_set():  # the server is shutting down: leave the rest
                    report.status, report.reason = "failed", "the server stopped before this file"
                    continue
                try:
                    summary = ingest_paths([path], kb)
                except RagError as exc:  # e.g. another writer holds the KB: this file fails
                    summary = IngestSummary(kb=kb.name)
                    summary.failed.append(FileIssue(source=str(path), reason=str(exc)))
                report.status, report.reason = _file_status(summary)  # type: ignore[assignment]
                report.chunks = summary.chunks_written
                # a duplicate's upload is not in the KB either: its bytes are, under another path
                rejected = report.status in ("failed", "skipped", "duplicate")
                if rejected and on_failed_file is not None:
                    on_failed_file(path)
                merge(job.report, summary)
                job.files_done += 1
            job.status = "done"
        except Exception as exc:  # noqa: BLE001 - a job must end in a state the client can read
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = time.time()

    def shutdown(self) -> None:
        """Drop queued jobs and the rest of a running one; its current file finishes (each file
        is written in one transaction, so stopping between files leaves the KB consistent)."""
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
