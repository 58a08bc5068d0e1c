"""The one entry point of the online half: a question and a knowledge base in, an Answer out.

CLI, Python API, HTTP API, UI and eval all call `ask`/`ask_stream`; they dispatch to the
answering pipeline (direct, cot, cited) or the agent loop. A direct-mode question that compares
two things or asks for a difference goes to the agent (route_to_agent): one passage span cannot
answer it, and the agent looks up both facts and calculates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rag_app.answering.form import needs_reasoning
from rag_app.errors import ConfigError
from rag_app.records import Answer, Mode
from rag_app.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase

__all__ = ["History", "ask", "ask_stream", "check_question"]
History = list[tuple[str, str]]
MODES: tuple[Mode, ...] = ("direct", "cot", "cited", "agent")
MAX_QUESTION_CHARS = 4000
ROUTED_NOTE = (
    "Answered by the agent: the question compares two things or asks for a difference "
    "(setting route_to_agent)."
)


def check_question(question: str) -> str:
    """The question stripped, or a ConfigError a user can act on (empty, blank or too long)."""
    text = (question or "").strip()
    if not text:
        raise ConfigError("The question is empty: type a question to ask the knowledge base.")
    if len(text) > MAX_QUESTION_CHARS:
        raise ConfigError(
            f"The question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}. "
            "Ask a shorter question."
        )
    return text


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    return mode  # type: ignore[return-value]


def _open(kb: str | KnowledgeBase | None, settings: Settings) -> KnowledgeBase:
    from ingest.kb import open_kb

    if kb is None or isinstance(kb, str):
        return open_kb(kb, settings=settings)
    return kb


def ask_stream(
    question: str,
    kb: str | KnowledgeBase | None = None,
    mode: Mode = "direct",
    history: History | None = None,
    settings: Settings | None = None,
    llm: BaseChatModel | None = None,
) -> Iterator[str | Answer]:
    """Yield the answer's text deltas as the model writes them, then the final Answer last.

    The final Answer is grounded and verified, so its text can differ from the streamed draft
    (e.g. the exact passage span, or the abstention phrase): callers show Answer.text at the end.
    """
    settings = settings or get_settings()
    question = check_question(question)
    mode = check_mode(mode)
    base = _open(kb, settings)
    if llm is None:
        from rag_app.serving.llm import chat_model

        llm = chat_model(settings)
    routed = mode == "direct" and settings.route_to_agent and needs_reasoning(question)
    if mode == "agent" or routed:
        from rag_app.agent.loop import run_agent

        answer = run_agent(question, base, settings, llm, history)
        if routed:
            note = f"{ROUTED_NOTE} {answer.message}".strip()
            answer = answer.model_copy(update={"message": note})
        yield answer.text
        yield answer
        return
    from rag_app.answering.answer import answer_stream

    yield from answer_stream(question, base, mode, history, settings, llm)


def ask(
    question: str,
    kb: str | KnowledgeBase | None = None,
    mode: Mode = "direct",
    history: History | None = None,
    settings: Settings | None = None,
    llm: BaseChatModel | None = None,
) -> Answer:
    """Answer a question from a knowledge base (the non-streaming form of ask_stream)."""
    final: Answer | None = None
    for item in ask_stream(question, kb, mode, history, settings, llm):
        if isinstance(item, Answer):
            final = item
    assert final is not None
    return final
