"""UI knowledge-base management: create, switch to and delete (with confirmation) a KB.

Switching is the sidebar's selectbox; these controls set its value in callbacks, which run
before the sidebar is drawn (a widget's value cannot change after it is drawn in a run).
Deleting removes the KB folder, its uploaded copies and its chats; the session then moves to
another KB (or the configured default, which the next upload creates), so nothing is left
pointing at a KB that is gone.
"""

from __future__ import annotations

import shutil

import streamlit as st

from ingest.uploads import upload_dir
from rag_app.errors import RagError
from rag_app.settings import Settings
from rag_app.ui import state
from rag_app.ui.chat import CHAT_KEY
from rag_app.ui.chat_store import open_chats
from rag_app.ui.text import as_text

NOTICE_KEY = "kb_notice"  # (ok, message) shown once after a create/delete
CONFIRM_KEY = "confirm_delete_kb"
NEW_NAME_KEY = "new_kb_name"


def render_kb_admin(settings: Settings) -> None:
    """Create and delete controls for knowledge bases (the sidebar switches between them)."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        (st.success if notice[0] else st.error)(as_text(notice[1]))
    with st.expander("Knowledge bases", icon=":material/database:"):
        names = state.kb_names(settings)
        st.caption(as_text("On disk: " + (", ".join(names) or "none yet")))
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        left.text_input(
            "New knowledge base",
            key=NEW_NAME_KEY,
            placeholder="e.g. handbook",
            help="Letters, digits, '.', '_' or '-'; it becomes the active knowledge base.",
        )
        right.button("Create", key="kb-create", icon=":material/add:", on_click=_create)
        _delete_controls(settings)


def _create() -> None:
    name = str(st.session_state.get(NEW_NAME_KEY, "")).strip()
    settings = state.current_settings()
    try:
        if not name:
            raise ValueError("type a name for the new knowledge base first")
        if name in state.kb_names(settings) and settings.kb_dir(name).exists():
            raise ValueError(f"knowledge base {name} already exists: pick it in the sidebar")
        target = settings.model_copy(update={"kb": name})
        state.knowledge_base(target, create=True)
    except (RagError, ValueError) as exc:
        st.session_state[NOTICE_KEY] = (False, f"Could not create it: {exc}")
        return
    st.session_state[state.KB_KEY] = name
    st.session_state[NEW_NAME_KEY] = ""
    st.session_state[NOTICE_KEY] = (True, f"Created knowledge base {name}; it is now active.")


def _delete_controls(settings: Settings) -> None:
    name = settings.kb
    if not settings.kb_dir(name).exists():
        return
    if st.session_state.get(CONFIRM_KEY) != name:
        st.button(
            f"Delete {name}…",
            key="kb-delete",
            icon=":material/delete_forever:",
            on_click=st.session_state.__setitem__,
            args=(CONFIRM_KEY, name),
        )
        return
    st.warning(
        as_text(
            f"Delete knowledge base {name} with its documents, uploads and chats? "
            "This cannot be undone."
        )
    )
    yes, no = st.columns(2)
    yes.button(
        "Delete for good", key="kb-delete-yes", type="primary", on_click=_delete, args=(name,)
    )
    no.button("Keep it", key="kb-delete-no", on_click=st.session_state.pop, args=(CONFIRM_KEY,))


def delete_kb(settings: Settings, name: str) -> bool:
    """Remove a KB with everything the UI keeps for it (uploads, chats); False if absent."""
    from ingest.kb import remove_kb

    state.forget_knowledge_bases()  # close open stores before their files go
    removed = remove_kb(name, settings)
    shutil.rmtree(upload_dir(settings, name), ignore_errors=True)
    open_chats(settings, name).delete_all()
    return removed


def _delete(name: str) -> None:
    settings = state.current_settings()
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        delete_kb(settings, name)
    except (RagError, OSError) as exc:
        st.session_state[NOTICE_KEY] = (False, f"Could not delete {name}: {exc}")
        return
    remaining = [n for n in state.kb_names(settings) if n != name]
    st.session_state[state.KB_KEY] = remaining[0] if remaining else state.base_settings().kb
    st.session_state.pop(CHAT_KEY, None)  # the open chat belonged to the deleted KB
    st.query_params.pop("chat", None)
    st.session_state[NOTICE_KEY] = (True, f"Deleted knowledge base {name}.")
