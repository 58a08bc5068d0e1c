"""Ingest jobs in Postgres (store = postgres): any replica takes an upload, exactly one runs it.

A job is a row of `rag.jobs` (its files' bytes in `rag.job_files`), so every replica sees it.
Each replica runs one worker thread that claims the oldest runnable job in one statement
(`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)`): two replicas never claim the same
row. A claim is a lease (setting job_lease_s) that a heartbeat thread renews; a job whose lease
ran out (its replica died or hung) is runnable again and the next claim takes it over, resuming
after the last file recorded as done. Every write of the job is guarded by `replica = me`, so a
replica that lost its lease stops. A file is replaced in the KB atomically under its source, so
a file re-run after a takeover is in the KB once (reported `unchanged` if it had been written).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ingest.pg_uploads import forget_upload, keep_upload, upload_bytes
from ingest.pipeline import IngestSummary
from ingest.uploads import UPLOAD_SCHEME, check_size, upload_source
from rag_app.api.errors import ApiError
from rag_app.api.jobs import JOBS_KEPT, FileReport, Job, failed_file, file_status, merge, new_job
from rag_app.api.pg_state import replica_id, state_pool
from rag_app.errors import RagError
from rag_app.settings import Settings

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase

log = logging.getLogger(__name__)
POLL_S = 1.0
MAX_ATTEMPTS = 3  # a job that took down its replica this often is failed, not retried forever
KEPT = ("added", "changed", "unchanged")

CLAIM = """
UPDATE rag.jobs SET status = 'running', replica = %(replica)s, attempts = attempts + 1,
  lease_until = now() + make_interval(secs => %(lease)s)
WHERE id = (
  SELECT id FROM rag.jobs
  WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
  ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id
"""
MINE = "id = %(id)s AND replica = %(replica)s AND status = 'running'"
COLUMNS = "doc, owner, status, replica, attempts"


def _job(row: Any) -> Job:
    doc, owner, status, replica, attempts = row
    return Job.model_validate(
        {**doc, "owner": owner, "status": status, "replica": replica or "", "attempts": attempts}
    )


class PgJobQueue:
    """The shared job table and this replica's worker (started at construction)."""

    def __init__(
        self, settings: Settings, open_kb: Callable[[str], KnowledgeBase], start: bool = True
    ) -> None:
        self.settings = settings
        self.pool = state_pool(settings)
        self.replica = replica_id()
        self.lease_s = settings.job_lease_s
        self._open_kb = open_kb
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker = threading.Thread(target=self._loop, name="rag-ingest", daemon=True)
        if start:  # False: a queue that only submits and reads (and claims when told to)
            self._worker.start()

    # --- the API's side -----------------------------------------------------------------------
    def _insert(self, job: Job, sources: list[str], blobs: list[bytes]) -> Job:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO rag.jobs(id, kb, owner, status, doc) VALUES (%s, %s, %s, %s, %s)",
                (job.id, job.kb, job.owner, job.status, Jsonb(job.model_dump(mode="json"))),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO rag.job_files(job_id, position, source, data) "
                    "VALUES (%s, %s, %s, %s)",
                    [
                        (job.id, i, s, b)
                        for i, (s, b) in enumerate(zip(sources, blobs, strict=True))
                    ],
                )
        self._wake.set()  # this replica looks at once; the others within POLL_S
        return job

    def submit_files(self, kb: KnowledgeBase, files: list[tuple[str, bytes]], owner: str) -> Job:
        for name, data in files:
            check_size(name, len(data), self.settings.max_upload_mb)
        sources = [upload_source(kb.name, name) for name, _ in files]
        reports = [FileReport(name=s.rsplit("/", 1)[1], source=s) for s in sources]
        return self._insert(new_job(kb.name, owner, reports), sources, [d for _, d in files])

    def submit_reingest(self, kb: KnowledgeBase, source: str, owner: str) -> Job:
        """An upload is read from the database; a file ingested from disk, from this host."""
        from pathlib import Path, PurePosixPath

        if source.startswith(UPLOAD_SCHEME):
            data = upload_bytes(self.settings, kb.name, source)
        else:
            data = Path(source).read_bytes() if Path(source).is_file() else None
        if data is None:
            raise ApiError(409, f"{source} is gone: upload it again", "source_missing")
        report = FileReport(name=PurePosixPath(source).name, source=source)
        return self._insert(new_job(kb.name, owner, [report]), [source], [data])

    def forget_upload(self, kb: KnowledgeBase, source: str) -> None:
        forget_upload(self.settings, kb.name, source)

    def get(self, job_id: str) -> Job | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM rag.jobs WHERE id = %s", (job_id,)
            ).fetchone()
        return _job(row) if row else None

    def all_jobs(self) -> list[Job]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM rag.jobs ORDER BY created_at DESC, id LIMIT %s",
                (JOBS_KEPT,),
            ).fetchall()
        return [_job(r) for r in reversed(rows)]

    def shutdown(self) -> None:
        """Stop after the current file; a job left unfinished goes back to the queue."""
        self._stop.set()
        self._wake.set()
        if self._worker.is_alive():
            self._worker.join(timeout=max(10.0, self.lease_s))

    # --- the worker's side --------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._claim()
                if job_id is not None:
                    self._run(job_id)
                    continue
            except Exception:  # noqa: BLE001 - a database blip must not end the worker
                log.exception("ingest worker: claiming or running a job failed")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _claim(self) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute(CLAIM, {"replica": self.replica, "lease": self.lease_s}).fetchone()
        return str(row[0]) if row else None

    def _write(self, job: Job, status: str | None = None, release: bool = False) -> bool:
        """Save progress (or the end, or a release) if this replica still holds the job."""
        from psycopg.types.json import Jsonb

        args = {"id": job.id, "replica": self.replica, "doc": Jsonb(job.model_dump(mode="json"))}
        if release:
            text = ("UPDATE rag.jobs SET status = 'queued', replica = NULL, lease_until = NULL, "
                    f"attempts = attempts - 1, doc = %(doc)s WHERE {MINE}")  # fmt: skip
        elif status is not None:
            text = f"UPDATE rag.jobs SET status = %(status)s, doc = %(doc)s, lease_until = NULL WHERE {MINE}"  # noqa: E501
            args["status"] = status
        else:
            text = f"UPDATE rag.jobs SET doc = %(doc)s WHERE {MINE}"
        with self.pool.connection() as conn, conn.transaction():
            held = conn.execute(text, args).rowcount > 0  # type: ignore[arg-type]
            if held and status is not None:
                conn.execute("DELETE FROM rag.job_files WHERE job_id = %s", (job.id,))
        return held

    def _heartbeat(self, job_id: str, ended: threading.Event, lost: threading.Event) -> None:
        while not ended.wait(self.lease_s / 3):
            try:
                with self.pool.connection() as conn:
                    renewed = conn.execute(
                        "UPDATE rag.jobs SET lease_until = now() + make_interval(secs => "
                        f"%(lease)s) WHERE {MINE}",
                        {"id": job_id, "replica": self.replica, "lease": self.lease_s},
                    ).rowcount
            except Exception:  # noqa: BLE001 - try again; the lease may lapse meanwhile
                log.exception("ingest worker: lease renewal failed")
                continue
            if not renewed:
                lost.set()
                return

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None or job.replica != self.replica:
            return
        if job.attempts > MAX_ATTEMPTS:
            job.error = f"its server stopped {MAX_ATTEMPTS} times while running it"
            job.finished_at = time.time()
            self._write(job, "failed")
            return
        ended, lost = threading.Event(), threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job_id, ended, lost), daemon=True)
        beat.start()
        status: str | None = None
        try:
            status = self._files(job, lost)
        except Exception as exc:  # noqa: BLE001 - a job must end in a state the client can read
            status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            ended.set()
            if status is not None:
                job.finished_at = time.time()
                self._write(job, status)
            elif not lost.is_set():  # shutting down: another replica goes on from here
                self._write(job, release=True)

    def _files(self, job: Job, lost: threading.Event) -> str | None:
        """Ingest the files not yet done; "done", or None when stopped or the lease was lost."""
        from ingest.pipeline import ingest_blob

        kb = self._open_kb(job.kb)
        for position in range(job.files_done, job.files_total):
            if self._stop.is_set() or lost.is_set():
                return None
            source, data = self._file(job.id, position)
            try:
                summary = ingest_blob(source, data, kb)
            except RagError as exc:
                summary = failed_file(kb.name, source, exc)
            self._record(job, position, summary, source, data)
            if not self._write(job):
                lost.set()
                return None
        return "done"

    def _file(self, job_id: str, position: int) -> tuple[str, bytes]:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT source, data FROM rag.job_files WHERE job_id = %s AND position = %s",
                (job_id, position),
            ).fetchone()
        assert row is not None, f"job {job_id} lost file {position}"
        return str(row[0]), bytes(row[1])

    def _record(
        self, job: Job, position: int, summary: IngestSummary, source: str, data: bytes
    ) -> None:
        report = job.files[position]
        report.status, report.reason = file_status(summary)  # type: ignore[assignment]
        report.chunks = summary.chunks_written
        if report.status in KEPT and source.startswith(UPLOAD_SCHEME):
            keep_upload(self.settings, job.kb, source, data)  # re-ingest through any replica
        merge(job.report, summary)
        job.files_done += 1
