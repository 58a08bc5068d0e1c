"""Service state in Postgres (store = postgres): the tables every `rag serve` replica shares.

API keys (hashes only) and ingest jobs with their uploaded bytes live in the schema `rag` next to
the KB registry of ingest/pg_db.py; the bytes of documents uploaded into database KBs are kept by
ingest/pg_uploads.py (the UI keeps its uploads there too). The tables are created once per
process, under the same advisory lock as the rest of the schema.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import TYPE_CHECKING

from ingest.pg_db import in_database, pool_with_tables
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
"""

__all__ = ["in_database", "replica_id", "state_pool"]


def state_pool(settings: Settings) -> ConnectionPool:
    """The process's pool for the configured database, with the state tables in place."""
    return pool_with_tables(settings, STATE_SCHEMA)


def replica_id() -> str:
    """This process among the replicas: host, pid and a random tag (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
