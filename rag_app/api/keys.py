"""API keys: create, list, revoke and check the keys of the HTTP API (stored hashed, in SQLite).

A key reads `rag-<id>.<secret>`. Only sha256(key) is stored, next to its id, role and the
knowledge bases it may use; the plain key is shown once, at creation. Keys are 32 random bytes,
so a fast hash is enough (no password stretching needed). SQLite transactions make each write
atomic; every request re-reads the key, so a revocation takes effect at once.
With store = postgres the same contract is kept in the database instead (api/pg_keys.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from rag_app.errors import ConfigError
from rag_app.settings import Settings

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "editor", "admin")
ALL_KBS = "*"
KEY_PREFIX = "rag-"

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    kbs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the secret itself)."""

    id: str
    name: str
    role: Role
    kbs: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_use(self, kb: str) -> bool:
        return ALL_KBS in self.kbs or kb in self.kbs

    def at_least(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def keys_path(settings: Settings) -> Path:
    return settings.root / "api" / "keys.sqlite"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Keys(Protocol):
    """What the API and `rag keys` need from a key store (SQLite here, Postgres in pg_keys)."""

    def create(self, name: str, role: str, kbs: list[str]) -> tuple[ApiKey, str]: ...
    def all_keys(self, include_revoked: bool = True) -> list[ApiKey]: ...
    def revoke(self, key_id: str) -> bool: ...
    def has_active(self) -> bool: ...
    def check(self, plain: str) -> ApiKey | None: ...
    def close(self) -> None: ...


def new_key(name: str, role: str, kbs: list[str]) -> tuple[ApiKey, str]:
    """A checked new key record and its plain text (each key store keeps only the hash)."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if not kbs:
        raise ConfigError("name at least one knowledge base (--kb NAME, or --kb '*' for all)")
    key_id = secrets.token_hex(4)
    plain = f"{KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id, name or key_id, role, tuple(kbs), now_text())  # type: ignore[arg-type]
    return record, plain


class KeyStore:
    """The key table in the data dir; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(SCHEMA)
        path.chmod(0o600)  # hashes only, but nobody else needs to read them

    @classmethod
    def open(cls, settings: Settings) -> KeyStore:
        return cls(keys_path(settings))

    def create(self, name: str, role: str, kbs: list[str]) -> tuple[ApiKey, str]:
        """A new key and its plain text (shown once: only its hash is kept)."""
        record, plain = new_key(name, role, kbs)
        key_id = record.id
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key_id, record.name, hash_key(plain), role, json.dumps(kbs), record.created_at),
            )
        return record, plain

    def all_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name, role, kbs, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at, id"
            ).fetchall()
        found = [_record(row) for row in rows]
        return found if include_revoked else [k for k in found if k.active]

    def revoke(self, key_id: str) -> bool:
        """Revoke by id (or by the full key); False when no active key matched."""
        key_id = key_id_of(key_id) or key_id
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now_text(), key_id),
            )
        return cursor.rowcount > 0

    def has_active(self) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"
            ).fetchone()
        return row is not None

    def check(self, plain: str) -> ApiKey | None:
        """The key's record when `plain` is a known key (revoked ones included), else None."""
        key_id = key_id_of(plain)
        if key_id is None:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, role, kbs, created_at, revoked_at, key_hash FROM api_keys "
                "WHERE id = ?",
                (key_id,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[6], hash_key(plain)):
            return None
        return _record(row[:6])

    def close(self) -> None:
        self._conn.close()


def key_id_of(plain: str) -> str | None:
    if not plain.startswith(KEY_PREFIX) or "." not in plain:
        return None
    return plain[len(KEY_PREFIX) :].split(".", 1)[0] or None


def _record(row: tuple[str, str, str, str, str, str | None]) -> ApiKey:
    key_id, name, role, kbs, created_at, revoked_at = row
    return ApiKey(key_id, name, role, tuple(json.loads(kbs)), created_at, revoked_at)  # type: ignore[arg-type]
