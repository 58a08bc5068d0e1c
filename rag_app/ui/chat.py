"""UI chat page: ask the knowledge base, stream the answer, keep the conversation per session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from rag_app.errors import KnowledgeBaseError, LLMError, RagError
from rag_app.records import Answer, Mode
from rag_app.settings import Settings
from rag_app.ui import state
from rag_app.ui.answer_view import MODE_LABELS, render_abstention, render_answer, render_details
from rag_app.ui.text import as_text

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase

MESSAGES_KEY = "messages"
MODE_KEY = "mode"
MODES: list[Mode] = ["direct", "cot", "agent"]
MODE_HELP = (
    "Direct: answer from the retrieved passages. Chain of thought: reason step by step first. "
    "Agent: plan sub-questions and search several times (slower; for multi-part questions)."
)


@dataclass
class Turn:
    """One chat message; assistant turns keep the full Answer (or the error shown instead)."""

    role: str
    text: str
    answer: Answer | None = None
    error: str | None = None


def render_chat_page() -> None:
    """The chat page: mode switch, conversation so far, and the question box."""
    settings = state.current_settings()
    messages: list[Turn] = st.session_state.setdefault(MESSAGES_KEY, [])
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    with left:
        mode = st.segmented_control(
            "Answer mode",
            MODES,
            format_func=MODE_LABELS.__getitem__,
            default="direct",
            required=True,
            key=MODE_KEY,
            persist_state="session",
            help=MODE_HELP,
        )
    with right:
        if st.button("New chat", icon=":material/add_comment:", disabled=not messages):
            messages.clear()
            st.rerun()
    if not messages:
        st.caption(
            f"Ask a question about the documents in **{as_text(settings.kb)}**. "
            "Every answer lists the passages it is based on."
        )
    for turn in messages:
        _render_turn(turn)
    question = st.chat_input("Ask about your documents")
    if question and question.strip():
        _answer_question(question.strip(), mode or "direct", settings, messages)


def _render_turn(turn: Turn) -> None:
    with st.chat_message(turn.role):
        if turn.error:
            st.error(turn.error)
        elif turn.answer is not None:
            render_answer(turn.answer)
        else:
            st.markdown(as_text(turn.text))


def _answer_question(question: str, mode: Mode, settings: Settings, messages: list[Turn]) -> None:
    # History = earlier turns that produced text; failed turns are not context for the model.
    history = [(t.role, t.text) for t in messages if not t.error]
    turn = Turn("user", question)
    messages.append(turn)
    _render_turn(turn)
    with st.chat_message("assistant"):
        try:
            kb = state.knowledge_base(settings)
            answer = _stream_answer(question, kb, mode, history, settings)
        except RagError as exc:
            message = str(exc)
            if isinstance(exc, KnowledgeBaseError):
                message += " You can also add files on the Documents page."
            messages.append(Turn("assistant", "", error=message))
            st.error(message)
            return
        except Exception as exc:  # keep the app usable; show what failed instead of a traceback
            message = (
                f"Answering failed ({type(exc).__name__}: {exc}). "
                "Check the model server status in the sidebar."
            )
            messages.append(Turn("assistant", "", error=message))
            st.error(message)
            return
    messages.append(Turn("assistant", answer.text, answer=answer))


def _stream_answer(
    question: str,
    kb: KnowledgeBase,
    mode: Mode,
    history: list[tuple[str, str]],
    settings: Settings,
) -> Answer:
    """Show text deltas as they arrive, then the verified answer with its details."""
    from rag_app.pipeline import ask_stream

    placeholder = st.empty()
    working = "The agent is planning and searching…" if mode == "agent" else "Searching…"
    placeholder.caption(working)
    text, answer = "", None
    llm = state.llm(settings)
    for item in ask_stream(question, kb=kb, mode=mode, history=history, settings=settings, llm=llm):
        if isinstance(item, Answer):
            answer = item
        else:
            text += item
            placeholder.markdown(as_text(text) + " ▌")
    if answer is None:
        raise LLMError("the answer stream ended without a final answer; try again")
    if answer.abstained:
        with placeholder.container():
            render_abstention(answer)
    else:
        placeholder.markdown(as_text(answer.text))
        render_details(answer)
    return answer
