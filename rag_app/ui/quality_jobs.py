"""UI background jobs: quality runs that keep going while the user reads or leaves the page.

One job per knowledge base (keyed by data dir and KB), held in this process: the page polls
its progress; the thread never calls Streamlit (it has no script context). A second "Evaluate"
for the same KB while one runs is refused, not queued.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[int, int], None]


@dataclass
class Job:
    key: str
    done: int = 0
    total: int = 0
    finished: bool = False
    error: str | None = None
    summary: dict[str, Any] | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def current(key: str) -> Job | None:
    return _JOBS.get(key)


def running(key: str) -> bool:
    job = _JOBS.get(key)
    return job is not None and not job.finished


def start(key: str, work: Callable[[Progress], dict[str, Any]]) -> Job:
    """Run `work(progress)` in a daemon thread; its summary or error lands on the job."""
    with _LOCK:
        if running(key):
            raise RuntimeError("an evaluation of this knowledge base is already running")
        job = Job(key)
        _JOBS[key] = job

    def body() -> None:
        try:
            job.summary = work(job.progress)
        except Exception as exc:  # noqa: BLE001 - shown on the page instead of lost in a thread
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.finished = True

    job.thread = threading.Thread(target=body, name=f"quality-{key}", daemon=True)
    job.thread.start()
    return job


def forget(key: str) -> None:
    with _LOCK:
        if not running(key):
            _JOBS.pop(key, None)
