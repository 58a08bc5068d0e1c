"""OpenAI-compatible endpoints: GET /v1/models and POST /v1/chat/completions (SSE or JSON).

A model is a knowledge base: `rag:<kb>` (mode direct) or `rag:<kb>:<mode>` (cot, cited, agent);
the extra body field `rag` ({"mode", "top_k"}) overrides both. The last message is the question,
earlier user/assistant turns are the history for the condense step; system messages are
ignored (the prompts are ours). Answers come from `rag_app.pipeline` only.

The message content is the *verified* answer as a person should read it
(`Answer.display_text()`: a tentative answer reads "Probably X (not verified)"), so a stock client
can never show an unchecked draft as the answer. While streaming, the model's draft tokens travel
in the non-standard delta field `rag_draft`; the verified content follows in one delta, then the
last chunk carries `choices[0].delta.rag`, the answer record (citations with quotes, support,
confidence, kind, hits, timings). A non-streamed reply carries it in `choices[0].message.rag`.
LangChain's ChatOpenAI drops unknown fields: its `response_metadata["id"]` fetches the same record
from GET /v1/answers/{id}.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag_app.api.auth import api_state, check_kb, reader, visible_kbs
from rag_app.api.errors import ApiError
from rag_app.api.keys import ApiKey
from rag_app.api.replies import ENDPOINT, SseStream, extension, relay, usage_of
from rag_app.pipeline import MODES, ask_stream, check_question
from rag_app.records import Answer, Mode

router = APIRouter(tags=["OpenAI-compatible"])
MODEL_PREFIX = "rag:"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class RagOptions(BaseModel):
    """The `rag` extra body field (openai: `extra_body={"rag": {...}}`)."""

    model_config = ConfigDict(extra="forbid")
    mode: Mode | None = Field(default=None, description="direct, cot, cited or agent.")
    top_k: int | None = Field(default=None, ge=1, le=50, description="Passages for the model.")


class ChatRequest(BaseModel):
    """OpenAI's chat request. Sampling fields are accepted and ignored: the answering pipeline
    sets its own (settings llm_temperature, llm_max_tokens); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="rag:<kb> or rag:<kb>:<mode>; see GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    rag: RagOptions | None = None
    n: int | None = Field(default=None, description="Only 1 is supported.")
    tools: list[Any] | None = Field(default=None, description="Not supported (must be empty).")
    # accepted for compatibility, ignored
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    tool_choice: Any = None
    reasoning_effort: str | None = None


def parse_model(model: str, options: RagOptions | None) -> tuple[str, Mode]:
    """(kb, mode) from `rag:<kb>[:<mode>]` and the `rag` options; 404 for another model name."""
    parts = model.split(":")
    if parts[0] + ":" != MODEL_PREFIX or len(parts) not in (2, 3) or not parts[1]:
        raise ApiError(
            404,
            f"unknown model {model!r}: use rag:<kb> or rag:<kb>:<mode> (GET /v1/models lists them)",
            "model_not_found",
            "model",
        )
    mode = parts[2] if len(parts) == 3 else "direct"
    if mode not in MODES:
        raise ApiError(
            404,
            f"unknown mode {mode!r} in model {model!r}: use one of {', '.join(MODES)}",
            "model_not_found",
            "model",
        )
    if options and options.mode:
        mode = options.mode
    return parts[1], mode  # type: ignore[return-value]


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (last user message) and the earlier turns as (role, text) history."""
    if messages[-1].role != "user":
        raise ApiError(
            400,
            "the last message must have role 'user' (the question)",
            "invalid_messages",
            "messages",
        )
    history: list[tuple[str, str]] = []
    for message in messages[:-1]:
        if message.role == "tool":
            raise ApiError(
                400,
                "tool messages are not supported: this model has no tools",
                "invalid_messages",
                "messages",
            )
        if message.role in ("user", "assistant") and message.text().strip():
            history.append((message.role, message.text()))
    return messages[-1].text(), history


@router.get("/v1/models")
def list_models(request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    """One model per knowledge base this key may read, plus its mode variants."""
    data = []
    for kb in visible_kbs(key, api_state(request).kb_names()):
        for mode in MODES:
            name = f"{MODEL_PREFIX}{kb}" + ("" if mode == "direct" else f":{mode}")
            data.append({"id": name, "object": "model", "created": 0, "owned_by": "rag_app"})
    return {"object": "list", "data": data}


@router.get("/v1/models/{model}")
def get_model(model: str, request: Request, key: ApiKey = Depends(reader)) -> dict[str, Any]:  # noqa: B008
    kb, _ = parse_model(model, None)
    check_kb(key, kb)
    api_state(request).kb(kb)
    return {"id": model, "object": "model", "created": 0, "owned_by": "rag_app"}


@router.post("/v1/chat/completions", response_model=None)
def chat_completions(
    body: ChatRequest,
    request: Request,
    key: ApiKey = Depends(reader),  # noqa: B008
) -> dict[str, Any] | StreamingResponse:
    """Answer the last message from the model's knowledge base, with verified citations."""
    if body.n not in (None, 1):
        raise ApiError(400, "n must be 1: one answer per request", "unsupported", "n")
    if body.tools:
        raise ApiError(400, "tools are not supported by rag models", "unsupported", "tools")
    kb_name, mode = parse_model(body.model, body.rag)
    check_kb(key, kb_name)
    question, history = split_messages(body.messages)
    question = check_question(question)
    state = api_state(request)
    base = state.kb(kb_name)
    settings = state.settings
    if body.rag and body.rag.top_k:
        settings = settings.model_copy(update={"top_k": body.rag.top_k})
    items = ask_stream(question, base, mode, history, settings, state.llm())
    answer_id = f"chatcmpl-{secrets.token_hex(12)}"
    if not body.stream:
        answer = [item for item in items if isinstance(item, Answer)][-1]
        state.remember(answer_id, key.id, answer)
        state.metrics.count_tokens(
            ENDPOINT, answer.usage.prompt_tokens, answer.usage.completion_tokens
        )
        message = {
            "role": "assistant",
            "content": answer.display_text(),
            "rag": extension(answer, kb_name, answer_id),
        }
        return {
            "id": answer_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "usage": usage_of(answer),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            ],
        }
    # The stream opens at once (headers, role chunk), so slow retrieval or an agent run never
    # leaves a client or proxy waiting for headers; a later failure is an error event.
    usage = bool((body.stream_options or {}).get("include_usage"))
    stream = SseStream(state, key.id, answer_id, body.model, kb_name, usage)
    return StreamingResponse(
        relay(stream.events(items)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
