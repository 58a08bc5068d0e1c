"""Ingest jobs: uploads and re-ingests run in a background thread; clients poll their progress.

Files are ingested one at a time with `ingest_paths`, so a job reports progress per file and
one bad file never stops the rest; `report` is the same IngestSummary `rag ingest --json` prints.
Jobs run one after another (one worker): ingestion is CPU-bound and a KB takes one writer.
This registry keeps jobs in memory and uploads in the data dir (the embedded default); with
store = postgres, api/pg_jobs.py keeps both in the database and any replica may run a job.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from ingest.pipeline import FileIssue, IngestSummary
from ingest.uploads import save_upload, upload_dir
from rag_app.api.errors import ApiError
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
    replica: str = Field(default="", description="The server process that ran (or runs) it.")
    attempts: int = Field(default=0, description="Times a replica claimed it (>1: taken over).")


def new_job(kb: str, owner: str, files: list[FileReport]) -> Job:
    return Job(
        id=f"job-{secrets.token_hex(6)}",
        kb=kb,
        owner=owner,
        files_total=len(files),
        files=files,
        report=IngestSummary(kb=kb),
        created_at=time.time(),
    )


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


def file_status(summary: IngestSummary) -> tuple[str, str]:
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


def failed_file(kb: str, source: str, exc: Exception) -> IngestSummary:
    summary = IngestSummary(kb=kb)
    summary.failed.append(FileIssue(source=source, reason=str(exc)))
    return summary


class Jobs(Protocol):
    """What the API needs from its ingest jobs (in memory here, in Postgres in pg_jobs)."""

    replica: str

    def submit_files(self, kb: KnowledgeBase, files: list[tuple[str, bytes]], owner: str) -> Job:
        """Keep the uploaded files and queue their ingest into `kb`."""
        ...

    def submit_reingest(self, kb: KnowledgeBase, source: str, owner: str) -> Job: ...
    def forget_upload(self, kb: KnowledgeBase, source: str) -> None: ...
    def get(self, job_id: str) -> Job | None: ...
    def all_jobs(self) -> list[Job]: ...
    def shutdown(self) -> None: ...


class JobRegistry:
    """Jobs by id, run by one worker thread; uploads kept in the data dir's upload folder."""

    replica = "local"

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")
        self._stopping = threading.Event()

    def submit_files(self, kb: KnowledgeBase, files: list[tuple[str, bytes]], owner: str) -> Job:
        folder = upload_dir(kb.settings, kb.name)
        max_mb = kb.settings.max_upload_mb
        paths = [save_upload(name, data, folder, max_mb) for name, data in files]
        return self.start(kb, paths, owner, on_failed_file=_drop)

    def submit_reingest(self, kb: KnowledgeBase, source: str, owner: str) -> Job:
        path = Path(source)
        if not path.is_file():
            raise ApiError(409, f"{path} is gone from disk: upload it again", "source_missing")
        return self.start(kb, [path], owner)

    def forget_upload(self, kb: KnowledgeBase, source: str) -> None:
        path = Path(source)
        if path.parent == upload_dir(kb.settings, kb.name):  # we hold the uploaded copy
            path.unlink(missing_ok=True)

    def start(
        self,
        kb: KnowledgeBase,
        paths: list[Path],
        owner: str,
        on_failed_file: Callable[[Path], None] | None = None,
    ) -> Job:
        """Queue an ingest of `paths` into `kb`; `on_failed_file` cleans up a rejected upload."""
        files = [FileReport(name=p.name, source=str(p)) for p in paths]
        job = new_job(kb.name, owner, files)
        job.replica = self.replica
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

        job.status, job.attempts = "running", 1
        try:
            for report, path in zip(job.files, paths, strict=True):
                if self._stopping.is_set():  # the server is shutting down: leave the rest
                    report.status, report.reason = "failed", "the server stopped before this file"
                    continue
                try:
                    summary = ingest_paths([path], kb)
                except RagError as exc:  # e.g. another writer holds the KB: this file fails
                    summary = failed_file(kb.name, str(path), exc)
                report.status, report.reason = file_status(summary)  # type: ignore[assignment]
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


def _drop(path: Path) -> None:
    path.unlink(missing_ok=True)  # the upload folder holds only documents in the KB
