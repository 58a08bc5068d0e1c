"""Chat history: turn a follow-up question into a standalone one before retrieval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag_app.answering.generate import _usage
from rag_app.answering.verify import content_words
from rag_app.prompts import render_prompt
from rag_app.records import Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

History = list[tuple[str, str]]  # (role, text), role in {"user", "assistant"}
CONDENSE_MAX_TOKENS = 48
MAX_TURNS = 6  # older turns rarely matter and cost prompt tokens


def last_user_question(history: History) -> str:
    return next((text for role, text in reversed(history) if role == "user"), "")


def clean_condensed(reply: str) -> str:
    """First line of the reply without a 'Standalone question:' style prefix or quotes."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if ":" in line[:40] and line.split(":", 1)[0].lower().strip().endswith("question"):
        line = line.split(":", 1)[1]
    return line.strip().strip('"').strip()


def retrieval_query(standalone: str, history: History) -> str:
    """The standalone question plus the previous question's key terms it lacks.

    A 135M model often fails to resolve "it"; appending the terms keeps retrieval on topic anyway.
    """
    have = set(content_words(standalone))
    extra = [w for w in content_words(last_user_question(history)) if w not in have]
    return " ".join([standalone, *dict.fromkeys(extra)]).strip()


def condense(question: str, history: History | None, llm: BaseChatModel) -> tuple[str, str, Usage]:
    """(standalone question, retrieval query, usage); no LLM call without history."""
    if not history:
        return question, question, Usage()
    turns = [{"role": role, "text": text} for role, text in history[-MAX_TURNS:]]
    prompt = render_prompt("condense", history=turns, question=question)
    reply = llm.bind(max_tokens=CONDENSE_MAX_TOKENS).invoke(prompt)
    usage = _usage(getattr(reply, "usage_metadata", None))
    condensed = clean_condensed(reply.content if isinstance(reply.content, str) else "")
    previous = last_user_question(history)
    if not condensed or len(condensed) > 300 or condensed.lower() == previous.lower():
        # Unusable rewrite: keep the user's words and show the model the previous question.
        condensed = f"{question} (previous question: {previous})" if previous else question
    return condensed, retrieval_query(condensed, history), usage
