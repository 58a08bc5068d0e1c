"""Replies of the chat endpoint: the `rag` extension record and the SSE stream of chunks.

The stream sends a role chunk, the draft tokens as `delta.rag_draft`, the verified text as one
`delta.content`, then the last chunk (finish_reason "stop") with `delta.rag`, an optional usage
chunk, and `data: [DONE]`. An error after the stream started (the model server died) becomes an
OpenAI error event, so clients see a well-formed failure instead of a cut connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from rag_app.api.errors import error_body, from_rag_error
from rag_app.api.state import ApiState
from rag_app.errors import RagError
from rag_app.records import Answer

log = logging.getLogger("rag_app.api")
ENDPOINT = "/v1/chat/completions"


def extension(answer: Answer, kb: str, answer_id: str) -> dict[str, Any]:
    """The documented `rag` field: the whole Answer record plus its id, KB and display text."""
    return {
        "answer_id": answer_id,
        "kb": kb,
        "display_text": answer.display_text(),
        **answer.model_dump(mode="json"),
    }


def usage_of(answer: Answer) -> dict[str, int]:
    p, c = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


class SseStream:
    """One streamed reply: OpenAI chat.completion.chunk events, then `data: [DONE]`."""

    def __init__(
        self, state: ApiState, owner: str, answer_id: str, model: str, kb: str, usage: bool
    ) -> None:
        self.state, self.owner, self.answer_id = state, owner, answer_id
        self.model, self.kb, self.usage = model, kb, usage
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": self.answer_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return _event(body)

    def events(self, items: Iterator[str | Answer]) -> Generator[bytes, None, None]:
        finished, started = False, time.perf_counter()
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            answer: Answer | None = None
            for item in items:
                if isinstance(item, Answer):
                    answer = item
                elif item:
                    if started:
                        self.state.metrics.first_token.observe(time.perf_counter() - started)
                        started = 0.0
                    yield self.chunk({"rag_draft": item})
            assert answer is not None, "ask_stream ended without an Answer"
            self.state.remember(self.answer_id, self.owner, answer)
            usage = answer.usage
            self.state.metrics.count_tokens(ENDPOINT, usage.prompt_tokens, usage.completion_tokens)
            yield self.chunk({"content": answer.display_text()})
            yield self.chunk({"rag": extension(answer, self.kb, self.answer_id)}, "stop")
            if self.usage:
                yield _event(
                    {
                        "id": self.answer_id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": usage_of(answer),
                    }
                )
            finished = True
        except RagError as exc:  # e.g. the model server died mid-stream: a well-formed event
            finished = True
            error = from_rag_error(exc)
            self.state.metrics.errors.labels(ENDPOINT, f"stream_{error.code}").inc()
            yield _event(error_body(error.status, error.message, error.code))
        except Exception as exc:  # noqa: BLE001 - the stream must end in a readable error
            finished = True
            log.exception("unexpected error in a chat stream", exc_info=exc)
            self.state.metrics.errors.labels(ENDPOINT, "stream_internal_error").inc()
            message = f"internal error ({type(exc).__name__}); the server log has the details"
            yield _event(error_body(500, message, "internal_error"))
        finally:
            if not finished:  # the client went away: stop generating for it
                self.state.metrics.disconnects.inc()
                close = getattr(items, "close", None)
                if close is not None:
                    close()
        yield b"data: [DONE]\n\n"


def _event(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def relay(events: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """Drive the blocking event generator in worker threads, and close it (which stops the
    model request) as soon as the response ends, also when the client went away halfway."""
    try:
        while (chunk := await run_in_threadpool(next, events, None)) is not None:
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(events.close)
