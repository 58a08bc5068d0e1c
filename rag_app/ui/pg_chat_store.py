"""UI chats in Postgres (store = postgres): the same contract as the SQLite ChatStore, shared by
every UI on every host that uses the database, and scoped by KB in every statement so two KBs'
chats never mix (a chat id from another KB is simply not found)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ingest.pg_db import pool_with_tables
from rag_app.settings import Settings
from rag_app.ui.chat_store import ChatInfo, Turn, clean_title, now_text, stored_answer

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

CHATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag.chats(
  id text PRIMARY KEY, kb text NOT NULL, title text NOT NULL,
  created_at text NOT NULL, updated_at text NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY);
CREATE INDEX IF NOT EXISTS chats_kb ON rag.chats(kb, updated_at);
CREATE TABLE IF NOT EXISTS rag.chat_messages(
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  chat_id text NOT NULL REFERENCES rag.chats(id) ON DELETE CASCADE,
  role text NOT NULL, text text NOT NULL, answer text, error text, created_at text NOT NULL);
CREATE INDEX IF NOT EXISTS chat_messages_chat ON rag.chat_messages(chat_id, id);
"""
INFO = "id, title, created_at, updated_at"


class PgChatStore:
    """The chats of one knowledge base in `rag.chats`; pooled connections, safe across threads."""

    def __init__(self, made: ConnectionPool, kb: str) -> None:
        self.pool = made
        self.kb = kb

    @classmethod
    def for_kb(cls, settings: Settings, kb: str) -> PgChatStore:
        return cls(pool_with_tables(settings, CHATS_SCHEMA), kb)

    def create(self, title: str) -> str:
        chat_id, now = uuid.uuid4().hex, now_text()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO rag.chats(id, kb, title, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (chat_id, self.kb, title, now, now),
            )
        return chat_id

    def chats(self) -> list[ChatInfo]:
        """Newest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {INFO} FROM rag.chats WHERE kb = %s ORDER BY updated_at DESC, seq DESC",
                (self.kb,),
            ).fetchall()
        return [ChatInfo(*row) for row in rows]

    def get(self, chat_id: str) -> ChatInfo | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {INFO} FROM rag.chats WHERE id = %s AND kb = %s", (chat_id, self.kb)
            ).fetchone()
        return ChatInfo(*row) if row else None

    def rename(self, chat_id: str, title: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE rag.chats SET title = %s WHERE id = %s AND kb = %s",
                (clean_title(title), chat_id, self.kb),
            )

    def delete(self, chat_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM rag.chats WHERE id = %s AND kb = %s", (chat_id, self.kb))

    def append(self, chat_id: str, turn: Turn) -> None:
        answer = turn.answer.model_dump_json() if turn.answer is not None else None
        now = now_text()
        with self.pool.connection() as conn, conn.transaction():
            touched = conn.execute(
                "UPDATE rag.chats SET updated_at = %s WHERE id = %s AND kb = %s",
                (now, chat_id, self.kb),
            )
            if touched.rowcount != 1:  # deleted meanwhile (in another tab or on another host)
                raise KeyError(f"chat {chat_id} is gone")
            conn.execute(
                "INSERT INTO rag.chat_messages(chat_id, role, text, answer, error, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (chat_id, turn.role, turn.text, answer, turn.error, now),
            )

    def turns(self, chat_id: str) -> list[Turn]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT m.role, m.text, m.answer, m.error FROM rag.chat_messages m "
                "JOIN rag.chats c ON c.id = m.chat_id WHERE c.id = %s AND c.kb = %s "
                "ORDER BY m.id",
                (chat_id, self.kb),
            ).fetchall()
        return [Turn(role, text, stored_answer(raw), error) for role, text, raw, error in rows]

    def delete_all(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM rag.chats WHERE kb = %s", (self.kb,))
