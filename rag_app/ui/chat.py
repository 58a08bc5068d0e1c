"""UI chat page: ask the knowledge base, stream the answer; conversations persist per KB.

Chats live in the chat store (SQLite in the data dir); the open chat's id is also in the URL
(`?chat=ID`), so a reload or a bookmark reopens it. The sidebar lists the KB's chats and offers
rename, export (Markdown) and delete for the open one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from rag_app.errors import KnowledgeBaseError, LLMError, RagError
from rag_app.records import Answer, Mode
from rag_app.settings import Settings
from rag_app.ui import state
from rag_app.ui.answer_view import MODE_LABELS, render_answer
from rag_app.ui.chat_export import chat_markdown
from rag_app.ui.chat_store import CHAT_ID, Chats, Turn, open_chats, title_for
from rag_app.ui.source_view import anchor_citations
from rag_app.ui.text import as_text

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase

__all__ = ["Turn", "render_chat_page"]

CHAT_KEY = "chat_id"
CONFIRM_DELETE_KEY = "confirm_delete_chat"
MODE_KEY = "mode"
MODES: list[Mode] = ["direct", "cot", "agent"]
MODE_HELP = (
    "Direct: answer from the retrieved passages. Chain of thought: reason step by step first. "
    "Agent: plan sub-questions and search several times (slower; for multi-part questions)."
)


def open_chat_id(store: Chats) -> str | None:
    """The chat this session shows: its own choice, else the one named in the URL."""
    chat_id = st.session_state.get(CHAT_KEY)
    if chat_id is None:
        wanted = st.query_params.get("chat")
        chat_id = wanted if isinstance(wanted, str) and CHAT_ID.match(wanted) else None
    if chat_id is not None and store.get(chat_id) is None:
        chat_id = None  # deleted, or a chat of another knowledge base
    return chat_id


def _select(chat_id: str | None) -> None:
    if st.session_state.get(CHAT_KEY) != chat_id:
        st.session_state[CONFIRM_DELETE_KEY] = False  # a pending "delete?" is for one chat only
    st.session_state[CHAT_KEY] = chat_id
    if chat_id is None:
        st.query_params.pop("chat", None)
    else:
        st.query_params["chat"] = chat_id


def render_chat_page() -> None:
    """The chat page: chat list in the sidebar, mode switch, conversation, question box."""
    settings = state.current_settings()
    store = open_chats(settings, settings.kb)
    chat_id = open_chat_id(store)
    _select(chat_id)
    _chat_sidebar(store, chat_id, settings)
    turns = store.turns(chat_id) if chat_id else []
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
        if st.button("New chat", key="new-chat", icon=":material/add_comment:", disabled=not turns):
            _select(None)
            st.rerun()
    if not turns:
        st.caption(
            f"Ask a question about the documents in **{as_text(settings.kb)}**. "
            "Every answer lists the passages it is based on."
        )
    for i, turn in enumerate(turns):
        _render_turn(turn, f"t{i}")
    question = st.chat_input("Ask about your documents")
    if question and question.strip():
        _answer_question(question.strip(), mode or "direct", settings, store, chat_id, turns)


def _chat_sidebar(store: Chats, chat_id: str | None, settings: Settings) -> None:
    with st.sidebar:
        st.markdown("**Chats**")
        chats = store.chats()
        if not chats:
            st.caption("Your conversations will be listed here.")
        for chat in chats:
            st.button(
                as_text(chat.title),
                key=f"chat-{chat.id}",
                type="primary" if chat.id == chat_id else "tertiary",
                icon=":material/chat_bubble:",
                on_click=_select,
                args=(chat.id,),
                width="stretch",
            )
        info = store.get(chat_id) if chat_id else None
        if info is None:
            return
        with st.expander("This chat", icon=":material/settings:"):
            title = st.text_input("Title", value=info.title, key=f"title-{info.id}")
            if st.button("Rename", key="chat-rename", icon=":material/edit:"):
                try:
                    store.rename(info.id, title)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
            markdown = chat_markdown(info.title, settings.kb, store.turns(info.id))
            st.download_button(
                "Export as Markdown",
                markdown,
                file_name=f"chat-{info.created_at[:10]}-{info.id[:8]}.md",
                mime="text/markdown",
                icon=":material/download:",
                on_click="ignore",
                key="chat-export",
            )
            _delete_with_confirmation(store, info.id)


def _delete_with_confirmation(store: Chats, chat_id: str) -> None:
    if not st.session_state.get(CONFIRM_DELETE_KEY):
        if st.button("Delete chat", key="chat-delete", icon=":material/delete:"):
            st.session_state[CONFIRM_DELETE_KEY] = True
            st.rerun()
        return
    st.warning("Delete this chat for good?")
    yes, no = st.columns(2)
    if yes.button("Delete", key="chat-delete-yes", type="primary"):
        store.delete(chat_id)
        _select(None)
        st.rerun()
    if no.button("Keep", key="chat-delete-no"):
        st.session_state[CONFIRM_DELETE_KEY] = False
        st.rerun()


def _render_turn(turn: Turn, key: str) -> None:
    with st.chat_message(turn.role):
        if turn.error:
            st.error(turn.error)
        elif turn.answer is not None:
            render_answer(turn.answer, key)
        else:
            st.markdown(as_text(turn.text))


def _answer_question(
    question: str,
    mode: Mode,
    settings: Settings,
    store: Chats,
    chat_id: str | None,
    turns: list[Turn],
) -> None:
    # History = earlier turns that produced text; failed turns are not context for the model.
    history = [(t.role, t.text) for t in turns if not t.error]
    if chat_id is None:
        chat_id = store.create(title_for(question))
        _select(chat_id)
    turn = Turn("user", question)
    store.append(chat_id, turn)
    _render_turn(turn, f"t{len(turns)}")
    with st.chat_message("assistant"):
        try:
            kb = state.knowledge_base(settings)
            answer = _stream_answer(question, kb, mode, history, settings, f"t{len(turns) + 1}")
        except RagError as exc:
            message = str(exc)
            if isinstance(exc, KnowledgeBaseError):
                message += " You can also add files on the Documents page."
            _fail(store, chat_id, message)
            return
        except Exception as exc:  # keep the app usable; show what failed instead of a traceback
            message = (
                f"Answering failed ({type(exc).__name__}: {exc}). "
                "Check the model server status in the sidebar."
            )
            _fail(store, chat_id, message)
            return
    store.append(chat_id, Turn("assistant", answer.text, answer=answer))
    st.rerun()  # the sidebar lists the new chat; the stored answer is drawn like any other


def _fail(store: Chats, chat_id: str, message: str) -> None:
    store.append(chat_id, Turn("assistant", "", error=message))
    st.error(message)


def _stream_answer(
    question: str,
    kb: KnowledgeBase,
    mode: Mode,
    history: list[tuple[str, str]],
    settings: Settings,
    key: str,
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
    answer = anchor_citations(answer, kb)
    with placeholder.container():
        render_answer(answer, key)
    return answer
