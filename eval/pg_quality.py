"""Golden sets and quality runs in Postgres (store = postgres), so every UI and `rag eval` on any
host that shares the database sees the same test questions and the same history of runs.

A golden set is one row per KB (its items as JSON, replaced as a whole, as the file is). A run is
written once, when it has finished: its summary and its per-question rows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ingest.pg_db import pool_with_tables
from rag_app.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

QUALITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag.golden_sets(
  kb text PRIMARY KEY, items jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS rag.quality_runs(
  kb text NOT NULL, id text NOT NULL, summary jsonb NOT NULL, rows jsonb NOT NULL,
  PRIMARY KEY (kb, id));
"""


def _pool(settings: Settings) -> ConnectionPool:
    return pool_with_tables(settings, QUALITY_SCHEMA)


def read_golden_items(settings: Settings, kb: str) -> list[dict[str, Any]]:
    with _pool(settings).connection() as conn:
        row = conn.execute("SELECT items FROM rag.golden_sets WHERE kb = %s", (kb,)).fetchone()
    return list(row[0]) if row else []


def write_golden_items(settings: Settings, kb: str, items: list[dict[str, Any]]) -> None:
    from psycopg.types.json import Jsonb

    with _pool(settings).connection() as conn:
        conn.execute(
            "INSERT INTO rag.golden_sets(kb, items) VALUES (%s, %s) ON CONFLICT (kb) "
            "DO UPDATE SET items = excluded.items, updated_at = now()",
            (kb, Jsonb(items)),
        )


def write_run(
    settings: Settings, kb: str, run_id: str, summary: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    from psycopg.types.json import Jsonb

    with _pool(settings).connection() as conn:
        conn.execute(
            "INSERT INTO rag.quality_runs(kb, id, summary, rows) VALUES (%s, %s, %s, %s)",
            (kb, run_id, Jsonb(summary), Jsonb(json.loads(json.dumps(rows, default=str)))),
        )


def read_runs(settings: Settings, kb: str) -> list[dict[str, Any]]:
    """The KB's run summaries, oldest first, each with its 'id'."""
    with _pool(settings).connection() as conn:
        found = conn.execute(
            "SELECT id, summary FROM rag.quality_runs WHERE kb = %s ORDER BY id", (kb,)
        ).fetchall()
    return [{**summary, "id": run_id} for run_id, summary in found]


def read_run_rows(settings: Settings, kb: str, run_id: str) -> list[dict[str, Any]]:
    with _pool(settings).connection() as conn:
        row = conn.execute(
            "SELECT rows FROM rag.quality_runs WHERE kb = %s AND id = %s", (kb, run_id)
        ).fetchone()
    return list(row[0]) if row else []
