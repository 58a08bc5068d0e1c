"""Chat page logic through Streamlit's AppTest, with a scripted chat model and fake embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from streamlit.testing.v1 import AppTest

from ingest.kb import open_kb
from ingest.pipeline import ingest_paths
from rag_app.records import ABSTAIN_PHRASE
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

APP = Path(__file__).resolve().parents[2] / "rag_app" / "ui" / "app.py"
DOC = """# Lighthouse

The Blue Harbor lighthouse was built by Ada Marsh in 1887.
Its lamp is visible for twenty nautical miles. <b>Bold claim</b> and **stars**.
"""


@pytest.fixture
def kb_settings(tmp_path: Path, fake_embeddings: HashingEmbeddings) -> Settings:
    """A knowledge base with one small document, built with the fake embeddings."""
    settings = Settings(data_dir=tmp_path / "data", min_relevance=0.0, top_k=2)
    doc = tmp_path / "docs" / "lighthouse.md"
    doc.parent.mkdir()
    doc.write_text(DOC)
    kb = open_kb(settings.kb, settings=settings, create=True, embeddings=fake_embeddings)
    assert ingest_paths([doc], kb).added == 1
    kb.close()
    return settings


def start_app(settings: Settings, replies: list[str] | None = None) -> AppTest:
    """The real app script, with fakes injected through session state (no patching)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["settings"] = settings
    at.session_state["embeddings"] = HashingEmbeddings()
    if replies is not None:
        at.session_state["llm"] = FakeListChatModel(responses=replies)
    return at.run()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question)
    return at.run()


def all_markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_page_renders_sidebar_controls(kb_settings: Settings) -> None:
    at = start_app(kb_settings, replies=["unused"])
    assert not at.exception
    assert at.sidebar.selectbox(key="kb_name").value == "default"
    assert at.sidebar.number_input(key="top_k").value == 2
    assert at.sidebar.slider(key="temperature").value == 0.0
    assert at.sidebar.text_input(key="llm_endpoint").value == ""
    assert "supplied to this session" in " ".join(c.value for c in at.sidebar.caption)
    assert at.button_group(key="mode").value == "direct"


def test_direct_answer_shows_numbered_source_with_quote(kb_settings: Settings) -> None:
    reply = json.dumps({"answer": "Ada Marsh [1]"})
    at = ask(start_app(kb_settings, [reply]), "Who built the Blue Harbor lighthouse?")
    assert not at.exception
    assert len(at.chat_message) == 2
    assistant = at.chat_message[1]
    assert "Ada Marsh" in "\n".join(m.value for m in assistant.markdown)
    labels = [e.label for e in assistant.expander]
    assert any(label.startswith("\\[1\\] lighthouse\\.md") for label in labels), labels
    quote = "\n".join(m.value for m in assistant.expander[0].markdown)
    assert quote.startswith("> ") and "Ada Marsh" in quote
    assert "support" in " ".join(c.value for c in assistant.caption)


def test_document_markup_is_shown_as_text(kb_settings: Settings) -> None:
    reply = json.dumps({"answer": "twenty nautical miles [1]"})
    at = ask(start_app(kb_settings, [reply]), "How far is the lamp visible?")
    text = all_markdown(at)
    assert "\\<b\\>Bold claim\\<\\/b\\>" in text  # escaped: shown literally, not as bold HTML
    assert "\\*\\*stars\\*\\*" in text
    assert not at.get("html")


def test_abstention_is_shown_as_such_with_related_passages(kb_settings: Settings) -> None:
    at = ask(start_app(kb_settings, [json.dumps({"answer": ABSTAIN_PHRASE})]), "Who is the mayor?")
    assert not at.exception
    assert any("I don't know" in i.value for i in at.info)
    assert at.chat_message[1].expander, "related passages are listed"


def test_history_is_kept_per_session_and_cleared(kb_settings: Settings) -> None:
    first = json.dumps({"answer": "Ada Marsh [1]"})
    second = json.dumps({"answer": "1887 [1]"})
    # The second question goes through condensing (one model call) before the answer.
    at = start_app(kb_settings, [first, "When was the Blue Harbor lighthouse built?", second])
    ask(at, "Who built the Blue Harbor lighthouse?")
    ask(at, "And when?")
    assert len(at.chat_message) == 4
    assert "1887" in "\n".join(m.value for m in at.chat_message[3].markdown)
    at.button(key="new-chat").click().run()
    assert len(at.chat_message) == 0


def test_cot_mode_shows_reasoning(kb_settings: Settings) -> None:
    reply = json.dumps({"reasoning": "Passage 1 names the builder.", "answer": "Ada Marsh [1]"})
    at = start_app(kb_settings, [reply])
    at.button_group(key="mode").set_value("cot").run()
    ask(at, "Who built the Blue Harbor lighthouse?")
    assert not at.exception
    reasoning = [e for e in at.chat_message[1].expander if e.label == "Reasoning"]
    assert reasoning and "builder" in reasoning[0].markdown[0].value


def test_agent_mode_shows_plan_and_steps(kb_settings: Settings) -> None:
    replies = [
        json.dumps({"sub_questions": ["Who built the Blue Harbor lighthouse?"]}),
        json.dumps(
            {"thought": "Search it.", "action": "search_docs", "action_input": "lighthouse built"}
        ),
        json.dumps({"thought": "Found it.", "action": "finish", "action_input": "Ada Marsh."}),
        json.dumps({"answer": "Ada Marsh."}),
    ]
    at = start_app(kb_settings, replies)
    at.button_group(key="mode").set_value("agent").run()
    ask(at, "Who built the Blue Harbor lighthouse?")
    assert not at.exception
    trace = [e for e in at.chat_message[1].expander if e.label.startswith("Agent plan and steps")]
    assert trace, [e.label for e in at.chat_message[1].expander]
    text = "\n".join(m.value for m in trace[0].markdown)
    assert "**Plan**" in text and "**Step 1**" in text and "search\\_docs" in text


def test_missing_knowledge_base_gives_clear_message(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "empty")
    at = ask(start_app(settings, ["unused"]), "Anything?")
    assert not at.exception
    assert any("does not exist" in e.value and "Documents page" in e.value for e in at.error)
    assert at.chat_input, "the app keeps working"


def test_unreachable_model_server_is_reported_and_app_survives(kb_settings: Settings) -> None:
    dead = kb_settings.model_copy(
        update={"llm_base_url": "http://127.0.0.1:9/v1", "llm_max_retries": 0}
    )
    at = start_app(dead)  # no injected model: the real client against a closed port
    assert any("Cannot reach http://127.0.0.1:9/v1" in e.value for e in at.sidebar.error)
    ask(at, "Who built the Blue Harbor lighthouse?")
    assert not at.exception
    assert at.chat_message[1].error, "the failure is shown in the conversation"
    assert at.chat_input


def _answer_view_script() -> None:
    """Renders one hand-made Answer (AppTest runs this function's body as the app script)."""
    from rag_app.records import Answer, Chunk, Citation, Hit, SentenceCheck
    from rag_app.ui.answer_view import render_answer

    def hit(chunk_id: str, text: str) -> Hit:
        chunk = Chunk(
            chunk_id=chunk_id, text=text, source="/d/doc.md", doc_hash="h", start=0, end=9
        )
        return Hit(chunk=chunk, score=1.0)

    sentences = [
        SentenceCheck(sentence="Ada Marsh built it.", marker=1, support=0.9, supported=True),
        SentenceCheck(sentence="It is <i>purple</i>.", marker=None, support=0.1, supported=False),
    ]
    citation = Citation(
        marker=1, chunk_id="c1", source="/d/doc.md", page=3, section="History", quote="Ada Marsh"
    )
    render_answer(
        Answer(
            question="q",
            standalone_question="q",
            text="Ada Marsh built it [1]. It is <i>purple</i>.",
            abstained=False,
            mode="cited",
            prompt_name="qa_cited",
            citations=[citation],
            sentences=sentences,
            support_score=0.5,
            hits=[hit("c1", "Ada Marsh built it."), hit("c2", "The tower is white.")],
        )
    )


def test_unsupported_sentences_are_marked_with_support_score() -> None:
    at = AppTest.from_function(_answer_view_script).run()
    assert not at.exception
    assert "support 0.50 (1/2 sentences)" in " ".join(c.value for c in at.caption)
    text = all_markdown(at)
    assert "Not supported by the sources" in text
    assert "- It is \\<i\\>purple\\<\\/i\\>\\." in text
    assert at.expander[0].label == "\\[1\\] doc\\.md · p\\. 3 · History"
    assert at.expander[1].label == "Other passages read (1)"
    assert "The tower is white" in at.expander[1].markdown[1].value


def test_configured_knowledge_base_is_preselected(kb_settings: Settings) -> None:
    open_kb("alpha", settings=kb_settings, create=True, embeddings=HashingEmbeddings()).close()
    at = start_app(kb_settings, replies=["unused"])
    assert at.sidebar.selectbox(key="kb_name").options == ["alpha", "default"]
    assert at.sidebar.selectbox(key="kb_name").value == "default"
