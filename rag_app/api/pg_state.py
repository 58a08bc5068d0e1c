"""Service state in Postgres (store = postgres): the tables every `rag serve` replica shares.

API keys (hashes only), ingest jobs with their uploaded bytes, and the bytes of documents
uploaded into database KBs (so any replica can re-ingest them) live in the schema `rag` next to
the KB registry of ingest/pg_db.py. The tables are created once per process, under the same
advisory lock as the rest of the schema.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from typing import TYPE_CHECKING

from ingest.pg_db import SCHEMA_LOCK, database_url, pool
from rag_app.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag.api_keys(
  id text PRIMARY KEY, name text NOT NULL, key_hash text NOT NULL, role text NOT NULL,
  kbs jsonb NOT NULL, created_at text NOT NULL, revoked_at text);
CREATE TABLE IF NOT EXISTS rag.jobs(
  id text PRIMARY KEY, kb text NOT NULL, owner text NOT NULL, status text NOT NULL,
  doc jsonb NOT NULL, replica text, lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS jobs_claim ON rag.jobs(status, created_at);
CREATE TABLE IF NOT EXISTS rag.job_files(
  job_id text NOT NULL REFERENCES rag.jobs(id) ON DELETE CASCADE, position integer NOT NULL,
  source text NOT NULL, data bytea NOT NULL, PRIMARY KEY (job_id, position));
CREATE TABLE IF NOT EXISTS rag.uploads(
  kb text NOT NULL, source text NOT NULL, data bytea NOT NULL, PRIMARY KEY (kb, source));
"""

_READY: set[str] = set()
_LOCK = threading.Lock()


def in_database(settings: Settings) -> bool:
    """Service state lives in Postgres exactly when the KBs do (store = postgres)."""
    return settings.store == "postgres"


def state_pool(settings: Settings) -> ConnectionPool:
    """The process's pool for the configured database, with the state tables in place."""
    url = database_url(settings)
    made = pool(url)
    with _LOCK:
        if url not in _READY:
            with made.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(STATE_SCHEMA)  # type: ignore[arg-type]
            _READY.add(url)
    return made


def replica_id() -> str:
    """This process among the replicas: host, pid and a random tag (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
