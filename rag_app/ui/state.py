"""UI state: effective settings and the cached heavy objects (embedder, stores, LLM client).

Tests (Streamlit AppTest) inject fakes through session-state keys instead of patching:
`settings` (a Settings), `embeddings` (a LangChain Embeddings), `llm` (a BaseChatModel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import streamlit as st

from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase

SETTINGS_KEY = "settings"
EMBEDDINGS_KEY = "embeddings"
LLM_KEY = "llm"
# Sidebar widget keys (their values override the base settings for this browser session).
KB_KEY = "kb_name"
TOP_K_KEY = "top_k"
TEMPERATURE_KEY = "temperature"
ENDPOINT_KEY = "llm_endpoint"


@st.cache_resource(show_spinner=False)
def _env_settings() -> Settings:
    return Settings()


def base_settings() -> Settings:
    """Settings from env/TOML (or the ones a test injected), before sidebar overrides."""
    injected = st.session_state.get(SETTINGS_KEY)
    return injected if isinstance(injected, Settings) else _env_settings()


def effective_settings() -> Settings:
    """Base settings with this session's sidebar choices applied."""
    base = base_settings()
    update: dict[str, Any] = {}
    if isinstance(st.session_state.get(TOP_K_KEY), int):
        update["top_k"] = st.session_state[TOP_K_KEY]
    if isinstance(st.session_state.get(TEMPERATURE_KEY), float):
        update["llm_temperature"] = st.session_state[TEMPERATURE_KEY]
    endpoint = st.session_state.get(ENDPOINT_KEY)
    if isinstance(endpoint, str):
        update["llm_base_url"] = endpoint.strip() or None
    if isinstance(st.session_state.get(KB_KEY), str):
        update["kb"] = st.session_state[KB_KEY]
    # Validate so a bad value from the sidebar is refused like one from the environment.
    return Settings.model_validate({**base.model_dump(), **update}) if update else base


def current_settings() -> Settings:
    """Effective settings, or the base ones while a sidebar value is invalid (shown there)."""
    try:
        return effective_settings()
    except ValueError:  # pydantic's ValidationError
        return base_settings()


def embeddings(settings: Settings) -> Embeddings:
    """The embedding model: injected, else loaded once per process and model."""
    injected = st.session_state.get(EMBEDDINGS_KEY)
    if injected is not None:
        return injected  # type: ignore[no-any-return]
    return _embedder(settings.embedding_model, settings)


@st.cache_resource(show_spinner="Loading the embedding model…")
def _embedder(model: str, _settings: Settings) -> Embeddings:
    from ingest.embed import limit_threads, load_embedder

    limit_threads(_settings)  # the UI answers beside a vLLM server on the same cores
    return load_embedder(_settings)


def knowledge_base(settings: Settings, create: bool = False) -> KnowledgeBase:
    """The session's knowledge base, opened once per process (KnowledgeBaseError if missing)."""
    emb = embeddings(settings)
    from ingest.embed import embedder_name

    key = f"{settings.root}|{settings.kb}|{embedder_name(emb)}"
    return _kb(key, settings, emb, create)


@st.cache_resource(show_spinner="Opening the knowledge base…")
def _kb(key: str, _settings: Settings, _emb: Embeddings, _create: bool) -> KnowledgeBase:
    # `_create` is not part of the cache key: one store object per KB, however it was opened
    # (a failed open of a missing KB raises, and exceptions are not cached).
    from ingest.kb import open_kb

    return open_kb(_settings.kb, settings=_settings, create=_create, embeddings=_emb)


def forget_knowledge_bases() -> None:
    """Drop the open knowledge bases (before one is deleted); the others reopen when used."""
    _kb.clear()


def kb_names(settings: Settings) -> list[str]:
    """Knowledge bases on disk, with the configured default first when it does not exist yet."""
    from ingest.kb import list_kbs

    names = sorted(list_kbs(settings))
    base = base_settings().kb
    return names if base in names else [base, *names]


def llm(settings: Settings) -> BaseChatModel:
    """The chat model: injected, else one client per endpoint/temperature/max tokens."""
    injected = st.session_state.get(LLM_KEY)
    if injected is not None:
        return injected  # type: ignore[no-any-return]
    ensure_local_server(settings)
    key = f"{settings.llm_base_url}|{settings.llm_temperature}|{settings.llm_max_tokens}"
    return _llm(key, settings)


def ensure_local_server(settings: Settings) -> None:
    """Start the local model server when it is down (first question, or after its idle stop),
    saying so in a status box: without it the page sat silent for a minute."""
    if settings.llm_base_url:
        return
    from rag_app.serving import server

    if server.status(settings).healthy:  # one /v1/models probe per question: milliseconds
        return
    with st.status("Starting the local model server…", expanded=True) as box:

        def show(message: str) -> None:
            box.markdown(message)

        server.serve(settings, notify=show)
        box.update(label="Model server ready", state="complete", expanded=False)
    _llm_status.clear()  # the sidebar said "unreachable" a moment ago


@st.cache_resource(show_spinner="Connecting to the model server…")
def _llm(key: str, _settings: Settings) -> BaseChatModel:
    from rag_app.serving.llm import chat_model

    return chat_model(_settings)


def llm_status(settings: Settings) -> tuple[bool, str]:
    """(healthy, one line) for the sidebar: the model served, or the error and what to do."""
    if st.session_state.get(LLM_KEY) is not None:
        return True, "Using the model supplied to this session."
    local = not settings.llm_base_url
    return _llm_status(
        settings.llm_base_url or f"http://{settings.llm_host}:{settings.llm_port}/v1", local
    )


@st.cache_data(ttl=15, show_spinner=False)
def _llm_status(url: str, local: bool = False) -> tuple[bool, str]:
    try:
        reply = httpx.get(f"{url.rstrip('/')}/models", timeout=3.0)
        reply.raise_for_status()
        models = [m.get("id", "?") for m in reply.json().get("data", [])]
    except (httpx.HTTPError, ValueError) as exc:
        if local:  # rag starts it on demand: not an error to fix
            return False, (
                f"Not running at {url}: it starts when you ask a question (about a minute) "
                "and stops itself when idle."
            )
        what = "start the server with `rag llm serve`, or set Model endpoint under Answer settings"
        return False, f"Cannot reach {url} ({type(exc).__name__}). To fix: {what}."
    return True, f"{', '.join(models) or 'no model'} at {url}"
