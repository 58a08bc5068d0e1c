"""Where the API's state lives, picked from settings: the data dir (SQLite keys, in-memory jobs,
upload folder: the embedded default) or, with store = postgres, the shared database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag_app.api.jobs import JobRegistry, Jobs
from rag_app.api.keys import Keys, KeyStore
from rag_app.api.pg_state import in_database
from rag_app.settings import Settings

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase


def open_keys(settings: Settings) -> Keys:
    if in_database(settings):
        from rag_app.api.pg_keys import PgKeyStore

        return PgKeyStore.open(settings)
    return KeyStore.open(settings)


def open_jobs(settings: Settings, open_kb: Callable[[str], KnowledgeBase]) -> Jobs:
    """The job queue; in the database its worker starts now and may take other replicas' jobs."""
    if in_database(settings):
        from rag_app.api.pg_jobs import PgJobQueue

        return PgJobQueue(settings, open_kb)
    return JobRegistry()
