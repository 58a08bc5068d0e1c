"""The UI's state in a real Postgres (store = postgres): two UIs with their own data dirs (two
hosts) on one database see the same uploads, chats, golden sets and quality runs, and nothing of
it is written to either data dir."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from eval.golden import GoldenItem, load_golden, save_golden
from eval.golden_run import past_run_rows, past_runs, run_golden
from ingest.kb import open_kb
from rag_app.records import Answer
from rag_app.settings import Settings
from rag_app.ui.chat_store import Turn, open_chats
from rag_app.ui.kb_admin import delete_kb
from rag_app.ui.pg_chat_store import PgChatStore
from tests.fakes import HashingEmbeddings, KeyedChat
from tests.ui_pages import documents_page, unescape

pytestmark = pytest.mark.integration

NOTE = b"# Tide tables\n\nHigh tide at Blue Harbor is at 06:40 on Mondays.\n"
SOURCE = "upload://docs/tides.md"


def host(tmp_path: Path, url: str, name: str) -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        store="postgres",
        database_url=SecretStr(url),
        kb="docs",
        min_relevance=0.0,
        top_k=2,
        answer_gate="off",
    )


def said(at: AppTest) -> list[str]:
    """The page's success lines as a reader sees them."""
    return [unescape(s.value) for s in at.main.success]


def kept_uploads(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT kb, source, octet_length(data) FROM rag.uploads ORDER BY 2")
        return [(str(kb), str(source), int(size)) for kb, source, size in rows]


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_an_upload_through_one_ui_is_listed_reingested_and_removed_through_another(
    tmp_path: Path, pg_url: str
) -> None:
    a, b = host(tmp_path, pg_url, "a"), host(tmp_path, pg_url, "b")
    page_a = documents_page(a)
    page_a.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    assert not page_a.exception
    assert said(page_a)[0].startswith("tides.md: added"), said(page_a)
    assert kept_uploads(pg_url) == [("docs", SOURCE, len(NOTE))]
    assert not files_under(a.root / "uploads"), "the bytes belong in the database"

    page_b = documents_page(b)  # another host: the document, its size, from the database
    table = page_b.dataframe[0].value
    assert list(table["Document"]) == ["tides.md"] and table["Size"][0] == f"{len(NOTE)} B"
    [again] = [button for button in page_b.button if button.label == "Re-ingest"]
    again.click().run()
    assert not page_b.exception and not page_b.main.error, [e.value for e in page_b.main.error]
    assert "re-ingested" in said(page_b)[0], said(page_b)
    kb = open_kb("docs", settings=b, embeddings=HashingEmbeddings())
    assert [s.source for s in kb.sources()] == [SOURCE]
    assert kb.keyword_search("high tide Mondays", k=1)

    [remove] = [button for button in page_b.button if button.label == "Remove"]
    remove.click().run()
    assert not page_b.exception
    assert kept_uploads(pg_url) == [], "removing the document drops its kept bytes"
    assert not open_kb("docs", settings=a, embeddings=HashingEmbeddings()).sources()


def test_chats_are_shared_per_kb_and_go_with_their_kb(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, pg_url, "a"), host(tmp_path, pg_url, "b")
    open_kb("docs", settings=a, create=True, embeddings=HashingEmbeddings())
    mine = open_chats(a, "docs")
    assert isinstance(mine, PgChatStore)
    chat = mine.create("tides")
    answer = Answer(
        question="When is high tide?",
        standalone_question="When is high tide?",
        text="06:40",
        abstained=False,
        kind="confident",
        mode="direct",
        prompt_name="qa",
    )
    mine.append(chat, Turn("user", "When is high tide?"))
    mine.append(chat, Turn("assistant", "06:40", answer=answer))
    theirs = open_chats(b, "docs")
    assert [c.id for c in theirs.chats()] == [chat]
    turns = theirs.turns(chat)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].answer is not None and turns[1].answer.text == "06:40"
    theirs.rename(chat, "  high   tide ")
    assert mine.get(chat) is not None and mine.get(chat).title == "high tide"  # type: ignore[union-attr]
    other = open_chats(b, "other")  # another KB: none of docs' chats, not even by id
    assert other.chats() == [] and other.get(chat) is None and other.turns(chat) == []
    other.delete(chat)
    assert theirs.get(chat) is not None
    assert not files_under(a.root / "chats") and not files_under(b.root / "chats")

    assert delete_kb(b, "docs")  # the UI's KB deletion takes its chats and uploads along
    assert open_chats(a, "docs").chats() == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM rag.chat_messages").fetchone() == (0,)


def test_golden_sets_and_quality_runs_are_shared(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, pg_url, "a"), host(tmp_path, pg_url, "b")
    doc = tmp_path / "lighthouse.md"
    doc.write_text("# Lighthouse\n\nThe Blue Harbor lighthouse was built by Ada Marsh in 1887.\n")
    kb = open_kb("docs", settings=a, create=True, embeddings=HashingEmbeddings())
    from ingest.pipeline import ingest_paths

    assert ingest_paths([doc], kb).added == 1
    items = [
        GoldenItem(
            question="Who built the lighthouse?", expected="Ada Marsh", source="lighthouse.md"
        ),
        GoldenItem(question="Who is the mayor?", expected=""),
    ]
    save_golden(a, "docs", items)
    assert load_golden(b, "docs") == items and load_golden(b, "other") == []
    llm = KeyedChat(
        replies={
            "Who built the lighthouse?": json.dumps({"answer": "Ada Marsh"}),
            "Who is the mayor?": json.dumps(
                {"answer": "I don't know based on the provided documents."}
            ),
        }
    )
    summary = run_golden(items, kb, a, llm=llm, concurrency=1)
    runs = past_runs(b, "docs")
    assert len(runs) == 1 and runs[0]["headline"] == summary["headline"]
    rows = past_run_rows(b, "docs", runs[0])
    assert [r["verdict"] for r in rows] == ["right", "abstained (right)"]
    assert rows[0]["source_hit"] is True and rows[0]["quote"]
    assert past_runs(b, "other") == []
    assert not files_under(a.root / "quality"), "runs belong in the database"
