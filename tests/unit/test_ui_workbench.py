"""Chat persistence and the source viewer through AppTest (scripted model, fake embeddings)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from streamlit.testing.v1 import AppTest

from ingest.kb import open_kb
from ingest.load import parse_bytes
from ingest.pipeline import ingest_paths
from rag_app.records import Answer, Citation
from rag_app.settings import Settings
from rag_app.ui.chat_export import chat_markdown
from rag_app.ui.chat_store import ChatStore, Turn, title_for
from tests.fakes import HashingEmbeddings

APP = Path(__file__).resolve().parents[2] / "rag_app" / "ui" / "app.py"
DOC = """# Lighthouse

The Blue Harbor lighthouse was built by Ada Marsh in 1887.
Its lamp is visible for twenty nautical miles. <script>alert("x")</script> stays text.
"""
QUESTION = "Who built the Blue Harbor lighthouse?"
MARK = re.compile(r'<mark data-testid="rag-mark">(.*?)</mark>', re.S)


@pytest.fixture
def kb_settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", min_relevance=0.0, top_k=2, answer_gate="off")
    doc = tmp_path / "docs" / "lighthouse.md"
    doc.parent.mkdir()
    doc.write_text(DOC)
    kb = open_kb(settings.kb, settings=settings, create=True, embeddings=HashingEmbeddings())
    assert ingest_paths([doc], kb).added == 1
    kb.close()
    return settings


def start_app(settings: Settings, replies: list[str], chat: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["settings"] = settings
    at.session_state["embeddings"] = HashingEmbeddings()
    at.session_state["llm"] = FakeListChatModel(responses=replies)
    if chat:
        at.query_params["chat"] = chat
    return at.run()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question)
    return at.run()


def chat_buttons(at: AppTest) -> list[str]:
    """Titles of the chats listed in the sidebar, as a reader sees them (markup unescaped)."""
    keys = [b for b in at.sidebar.button if re.fullmatch(r"chat-[0-9a-f]{32}", b.key or "")]
    return [re.sub(r"\\(.)", r"\1", b.label) for b in keys]


def test_citation_opens_document_with_quote_marked(kb_settings: Settings) -> None:
    at = ask(start_app(kb_settings, [json.dumps({"answer": "Ada Marsh [1]"})]), QUESTION)
    assert not at.exception
    opener = [b for b in at.main.button if b.label == "Open in document"]
    assert opener, "each citation can be opened"
    opener[0].click().run()
    assert not at.exception
    html = "".join(h.proto.body for h in at.get("html"))
    assert MARK.findall(html) == ["The Blue Harbor lighthouse was built by Ada Marsh in 1887."]
    assert "<script>" not in html and "&lt;script&gt;" in html  # document text stays literal
    assert '<strong class="rag-heading">Lighthouse</strong>' in html


def test_chat_persists_and_reopens_from_the_url(kb_settings: Settings) -> None:
    at = ask(start_app(kb_settings, [json.dumps({"answer": "Ada Marsh [1]"})]), QUESTION)
    chat_id = at.query_params["chat"]
    chat_id = chat_id[0] if isinstance(chat_id, list) else chat_id
    assert chat_buttons(at) == [QUESTION]
    # A new browser session (a reload) with the URL's chat id shows the same conversation.
    again = start_app(kb_settings, ["unused"], chat=chat_id)
    assert not again.exception
    assert len(again.chat_message) == 2
    assert "Ada Marsh" in "\n".join(m.value for m in again.chat_message[1].markdown)
    # ... and the stored answer keeps its quote's document offsets for the viewer.
    turns = ChatStore.for_kb(kb_settings, "default").turns(chat_id)
    citation = turns[1].answer.citations[0]  # type: ignore[union-attr]
    text = parse_bytes("lighthouse.md", ".md", DOC.encode()).text  # what offsets point into
    assert text[citation.start : citation.end] == citation.quote  # type: ignore[misc]


def test_new_session_lists_chats_and_opens_one(kb_settings: Settings) -> None:
    ask(start_app(kb_settings, [json.dumps({"answer": "Ada Marsh [1]"})]), QUESTION)
    at = start_app(kb_settings, ["unused"])
    assert len(at.chat_message) == 0 and chat_buttons(at) == [QUESTION]
    [b for b in at.sidebar.button if b.key.startswith("chat-")][0].click().run()
    assert len(at.chat_message) == 2


def test_rename_and_delete_with_confirmation(kb_settings: Settings) -> None:
    at = ask(start_app(kb_settings, [json.dumps({"answer": "Ada Marsh [1]"})]), QUESTION)
    at.sidebar.text_input[-1].set_value("Lighthouse builder")
    at.sidebar.button(key="chat-rename").click().run()
    assert chat_buttons(at) == ["Lighthouse builder"]
    at.sidebar.button(key="chat-delete").click().run()
    assert chat_buttons(at) == ["Lighthouse builder"], "nothing deleted before confirming"
    at.sidebar.button(key="chat-delete-yes").click().run()
    assert not at.exception
    assert chat_buttons(at) == [] and len(at.chat_message) == 0
    assert at.chat_input, "the page keeps working"


def test_store_round_trip_rename_rules_and_cascade(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "chats" / "kb.sqlite")
    chat = store.create(title_for("  What   is\nthis? " + "x" * 100))
    assert len(store.chats()[0].title) <= 60 and "\n" not in store.chats()[0].title
    store.append(chat, Turn("user", "q"))
    store.append(chat, Turn("assistant", "", error="boom"))
    assert [(t.role, t.error) for t in store.turns(chat)] == [("user", None), ("assistant", "boom")]
    with pytest.raises(ValueError, match="title"):
        store.rename(chat, "   ")
    store.delete(chat)
    assert store.chats() == [] and store.turns(chat) == []


def test_export_has_questions_kinds_citations_and_quotes() -> None:
    citation = Citation(
        marker=1, chunk_id="c", source="/d/harrow.md", section="History", quote="Built by Ellery."
    )

    def answer(kind: str, text: str) -> Answer:
        return Answer(
            question="q",
            standalone_question="q",
            text=text,
            abstained=kind == "abstained",
            kind=kind,
            mode="direct",
            prompt_name="qa",  # type: ignore[arg-type]
            citations=[] if kind == "abstained" else [citation],
        )

    turns = [
        Turn("user", "Who built it?"),
        Turn("assistant", "Ellery", answer("tentative", "Ellery")),
        Turn("user", "When?"),
        Turn("assistant", "", answer("abstained", "I don't know.")),
    ]
    md = chat_markdown("Harrow", "default", turns)
    assert md.startswith("# Harrow\n") and "## Q: Who built it?" in md
    assert "**Probably Ellery — not verified**" in md
    assert "- [1] harrow.md (History)" in md and "> Built by Ellery." in md
    assert "**I don't know**" in md
