"""The bytes of documents uploaded into a database KB (store = postgres), kept in `rag.uploads`.

An upload's source (`upload://KB/NAME`) names no local file, so its bytes live in the database:
any replica, the UI on any host, and `rag` on any machine can re-ingest it. The API and the UI
write here only once a file is in the KB, and delete its row when the document is removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.pg_db import pool_with_tables
from rag_app.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

UPLOADS_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag.uploads(
  kb text NOT NULL, source text NOT NULL, data bytea NOT NULL, PRIMARY KEY (kb, source));
"""


def uploads_pool(settings: Settings) -> ConnectionPool:
    return pool_with_tables(settings, UPLOADS_SCHEMA)


def keep_upload(settings: Settings, kb: str, source: str, data: bytes) -> None:
    """Store (or replace) the bytes of `source`, a document now in KB `kb`."""
    with uploads_pool(settings).connection() as conn:
        conn.execute(
            "INSERT INTO rag.uploads(kb, source, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (kb, source) DO UPDATE SET data = excluded.data",
            (kb, source, data),
        )


def upload_bytes(settings: Settings, kb: str, source: str) -> bytes | None:
    """The kept bytes of `source`, or None when it was never kept (or was removed)."""
    with uploads_pool(settings).connection() as conn:
        row = conn.execute(
            "SELECT data FROM rag.uploads WHERE kb = %s AND source = %s", (kb, source)
        ).fetchone()
    return bytes(row[0]) if row else None


def upload_sizes(settings: Settings, kb: str) -> dict[str, int]:
    """Source -> size in bytes of every upload kept for `kb` (one query for a document list)."""
    with uploads_pool(settings).connection() as conn:
        rows = conn.execute(
            "SELECT source, octet_length(data) FROM rag.uploads WHERE kb = %s", (kb,)
        ).fetchall()
    return {str(source): int(size) for source, size in rows}


def forget_upload(settings: Settings, kb: str, source: str) -> None:
    with uploads_pool(settings).connection() as conn:
        conn.execute("DELETE FROM rag.uploads WHERE kb = %s AND source = %s", (kb, source))


def forget_kb_uploads(settings: Settings, kb: str) -> None:
    with uploads_pool(settings).connection() as conn:
        conn.execute("DELETE FROM rag.uploads WHERE kb = %s", (kb,))
