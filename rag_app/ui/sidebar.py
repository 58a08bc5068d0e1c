"""UI sidebar: knowledge base, answer settings (top-k, endpoint, temperature), LLM server status."""

from __future__ import annotations

import streamlit as st

from rag_app.errors import RagError
from rag_app.settings import Settings
from rag_app.ui import state


def render_sidebar() -> Settings:
    """Draw the sidebar and return the session's effective settings."""
    base = state.base_settings()
    with st.sidebar:
        _kb_selector(base)
        with st.expander("Answer settings", expanded=False):
            st.number_input(
                "Passages per answer (top-k)",
                min_value=1,
                max_value=20,
                value=base.top_k,
                step=1,
                key=state.TOP_K_KEY,
                help="How many retrieved passages the model reads before answering.",
            )
            st.slider(
                "Temperature",
                min_value=0.0,
                max_value=2.0,
                value=float(base.llm_temperature),
                step=0.1,
                key=state.TEMPERATURE_KEY,
                help="0 gives the most repeatable answers.",
            )
            st.text_input(
                "Model endpoint",
                value=base.llm_base_url or "",
                key=state.ENDPOINT_KEY,
                placeholder=f"http://{base.llm_host}:{base.llm_port}/v1",
                help="OpenAI-compatible URL ending in /v1 (empty = the local vLLM server).",
            )
        try:
            settings = state.effective_settings()
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            st.error(f"Invalid setting: {exc}")
            settings = base
        _server_status(settings)
    return settings


def _kb_selector(base: Settings) -> None:
    try:
        names = state.kb_names(base)
    except RagError as exc:
        st.error(str(exc))
        names = [base.kb]
    st.selectbox(
        "Knowledge base",
        names,
        index=names.index(base.kb) if base.kb in names else 0,  # `rag ui --kb NAME` preselects
        key=state.KB_KEY,
        help="Documents are searched in, and uploaded to, this knowledge base.",
    )


def _server_status(settings: Settings) -> None:
    healthy, line = state.llm_status(settings)
    if healthy:
        st.caption(f":green[●] Model server healthy — {line}")
    elif not settings.llm_base_url:  # the local server starts on demand: news, not an error
        st.caption(f":grey[●] Model server stopped — {line}")
    else:
        st.error(f"Model server unreachable. {line}", icon=":material/error:")
