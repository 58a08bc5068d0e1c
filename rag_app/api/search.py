"""REST for retrieval and answers: POST /v1/search (passages), POST /v1/answers (Answer records).

Both call the same functions as the CLI (`rag search`, `rag ask --json`): retrieval from
rag_app.answering.retrieve, answers from rag_app.pipeline.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from rag_app.api.auth import api_state, check_kb, reader
from rag_app.api.errors import ApiError
from rag_app.api.keys import ApiKey
from rag_app.pipeline import MAX_QUESTION_CHARS, ask, check_question
from rag_app.records import Mode

router = APIRouter(tags=["Search and answers"])


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kb: str = Field(description="Knowledge base to search.")
    query: str = Field(max_length=MAX_QUESTION_CHARS, description="What to look for.")
    k: int = Field(default=5, ge=1, le=100, description="Passages to return.")
    source: str | None = Field(default=None, description="Only passages from this source path.")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kb: str = Field(description="Knowledge base to answer from.")
    question: str = Field(description=f"At most {MAX_QUESTION_CHARS} characters.")
    mode: Mode = Field(default="direct", description="direct, cot, cited or agent.")
    top_k: int | None = Field(default=None, ge=1, le=50, description="Passages for the model.")
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first.")


@router.post("/v1/search")
def search(body: SearchRequest, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """Hybrid retrieval (dense + BM25, fused): passages with scores and provenance."""
    from rag_app.answering.retrieve import retrieve

    check_kb(key, body.kb)
    query = body.query.strip()
    if not query:
        raise ApiError(400, "query is empty: say what to look for", "invalid_value", "query")
    state = api_state(request)
    base = state.kb(body.kb)
    hits = retrieve(query, base, state.settings, k=body.k, source=body.source)
    return {"kb": body.kb, "query": query, "hits": [h.model_dump(mode="json") for h in hits]}


@router.post("/v1/answers")
def answer(body: AnswerRequest, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """The full Answer record (as `rag ask --json`): text, kind, citations, hits, timings."""
    check_kb(key, body.kb)
    question = check_question(body.question)
    state = api_state(request)
    base = state.kb(body.kb)
    settings = state.settings
    if body.top_k:
        settings = settings.model_copy(update={"top_k": body.top_k})
    history: list[tuple[str, str]] = [(t.role, t.content) for t in body.history]
    result = ask(question, base, body.mode, history, settings, state.llm())
    usage = result.usage
    state.metrics.count_tokens("/v1/answers", usage.prompt_tokens, usage.completion_tokens)
    return result.model_dump(mode="json")


@router.get("/v1/answers/{answer_id}")
def recall(answer_id: str, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """The Answer record behind a chat completion id (for clients that drop the `rag` field)."""
    found = api_state(request).recall(answer_id, key.id)
    if found is None:
        raise ApiError(
            404,
            f"no answer {answer_id!r} for this key (the server keeps the last "
            "1000, until it restarts)",
            "answer_not_found",
        )
    return found.model_dump(mode="json")
