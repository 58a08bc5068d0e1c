"""UI chat store: conversations kept per knowledge base, in SQLite under the data dir or, with
store = postgres, in the shared database (ui/pg_chat_store.py), so a UI on any host sees them.

One file per knowledge base (`<data_dir>/chats/<kb>.sqlite`), so deleting a KB's chats is one
file and two KBs never mix. Answers are stored as the Answer record's JSON (no pickle), with the
quote offsets the viewer needs; a stored answer that no longer validates is shown as text only.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from ingest.pg_db import in_database
from rag_app.records import Answer
from rag_app.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats(
  id TEXT PRIMARY KEY, title TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
  role TEXT NOT NULL, text TEXT NOT NULL, answer TEXT, error TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_chat ON messages(chat_id, id);
"""
TITLE_CHARS = 60
CHAT_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Turn:
    """One chat message; assistant turns keep the full Answer (or the error shown instead)."""

    role: str
    text: str
    answer: Answer | None = None
    error: str | None = None


@dataclass(frozen=True)
class ChatInfo:
    id: str
    title: str
    created_at: str
    updated_at: str


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def title_for(question: str) -> str:
    """A chat's first title: its first question, shortened."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class Chats(Protocol):
    """The chats of one knowledge base, wherever they are kept."""

    def create(self, title: str) -> str: ...
    def chats(self) -> list[ChatInfo]: ...
    def get(self, chat_id: str) -> ChatInfo | None: ...
    def rename(self, chat_id: str, title: str) -> None: ...
    def delete(self, chat_id: str) -> None: ...
    def append(self, chat_id: str, turn: Turn) -> None: ...
    def turns(self, chat_id: str) -> list[Turn]: ...
    def delete_all(self) -> None: ...


def open_chats(settings: Settings, kb: str) -> Chats:
    """The KB's chats: in the database when the KBs are (store = postgres), else a file."""
    if in_database(settings):
        from rag_app.ui.pg_chat_store import PgChatStore

        return PgChatStore.for_kb(settings, kb)
    return ChatStore.for_kb(settings, kb)


def clean_title(title: str) -> str:
    """A renamed chat's title on one line; ValueError when nothing is left."""
    title = " ".join(title.split())
    if not title:
        raise ValueError("a chat needs a title: type at least one character")
    return title[:200]


class ChatStore:
    """The chats of one knowledge base. Opens a connection per call (Streamlit uses threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as conn:
            conn.executescript(SCHEMA)

    @classmethod
    def for_kb(cls, settings: Settings, kb: str) -> ChatStore:
        return cls(settings.root / "chats" / f"{kb}.sqlite")

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            with conn:  # commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    def create(self, title: str) -> str:
        chat_id = uuid.uuid4().hex
        now = now_text()
        with self._conn() as conn:
            conn.execute("INSERT INTO chats VALUES (?,?,?,?)", (chat_id, title, now, now))
        return chat_id

    def chats(self) -> list[ChatInfo]:
        """Newest first."""
        with self._conn() as conn:
            rows = conn.execute("SELECT * FROM chats ORDER BY updated_at DESC, rowid DESC")
            return [ChatInfo(*r) for r in rows.fetchall()]

    def get(self, chat_id: str) -> ChatInfo | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM chats WHERE id=?", (chat_id,)).fetchone()
        return ChatInfo(*row) if row else None

    def rename(self, chat_id: str, title: str) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE chats SET title=? WHERE id=?", (clean_title(title), chat_id))

    def delete(self, chat_id: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM chats WHERE id=?", (chat_id,))

    def append(self, chat_id: str, turn: Turn) -> None:
        answer = turn.answer.model_dump_json() if turn.answer is not None else None
        now = now_text()
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO messages(chat_id, role, text, answer, error, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (chat_id, turn.role, turn.text, answer, turn.error, now),
            )
            conn.execute("UPDATE chats SET updated_at=? WHERE id=?", (now, chat_id))

    def turns(self, chat_id: str) -> list[Turn]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT role, text, answer, error FROM messages WHERE chat_id=? ORDER BY id",
                (chat_id,),
            ).fetchall()
        return [Turn(role, text, stored_answer(raw), error) for role, text, raw, error in rows]

    def delete_all(self) -> None:
        self.path.unlink(missing_ok=True)


def stored_answer(raw: str | None) -> Answer | None:
    if raw is None:
        return None
    try:
        return Answer.model_validate_json(raw)
    except ValidationError:  # stored by another version of the app: keep the text only
        return None
