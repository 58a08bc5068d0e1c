"""API keys in Postgres (store = postgres): the same KeyStore contract, shared by every replica.

Only sha256(key) is stored. `check` and `has_active` query the database on every call, with no
cache: a key revoked through any replica (or `rag keys revoke` on any host) is refused by every
replica from its next request on.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from rag_app.api.keys import ApiKey, hash_key, key_id_of, new_key, now_text
from rag_app.api.pg_state import state_pool
from rag_app.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

COLUMNS = "id, name, role, kbs, created_at, revoked_at"


def _record(row: Any) -> ApiKey:
    key_id, name, role, kbs, created_at, revoked_at = row[:6]
    return ApiKey(key_id, name, role, tuple(kbs), created_at, revoked_at)


class PgKeyStore:
    """The key table `rag.api_keys`; safe to share between threads (pooled connections)."""

    def __init__(self, made: ConnectionPool) -> None:
        self.pool = made

    @classmethod
    def open(cls, settings: Settings) -> PgKeyStore:
        return cls(state_pool(settings))

    def create(self, name: str, role: str, kbs: list[str]) -> tuple[ApiKey, str]:
        """A new key and its plain text (shown once: only its hash is kept)."""
        from psycopg.types.json import Jsonb

        record, plain = new_key(name, role, kbs)
        key_id = record.id
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO rag.api_keys VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                (key_id, record.name, hash_key(plain), role, Jsonb(kbs), record.created_at),
            )
        return record, plain

    def all_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM rag.api_keys ORDER BY created_at, id"
            ).fetchall()
        found = [_record(row) for row in rows]
        return found if include_revoked else [k for k in found if k.active]

    def revoke(self, key_id: str) -> bool:
        """Revoke by id (or by the full key); False when no active key matched."""
        key_id = key_id_of(key_id) or key_id
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE rag.api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (now_text(), key_id),
            )
            return cursor.rowcount > 0

    def has_active(self) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM rag.api_keys WHERE revoked_at IS NULL LIMIT 1"
            ).fetchone()
        return row is not None

    def check(self, plain: str) -> ApiKey | None:
        """The key's record when `plain` is a known key (revoked ones included), else None."""
        key_id = key_id_of(plain)
        if key_id is None:
            return None
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS}, key_hash FROM rag.api_keys WHERE id = %s", (key_id,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[6], hash_key(plain)):
            return None
        return _record(row)

    def close(self) -> None:
        """The pool is shared with the KBs of this database; it closes at exit."""
