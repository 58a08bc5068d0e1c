"""The FastAPI application: routers, error handlers, metrics, limits; `create_app(settings)`.

`rag serve` runs it under uvicorn; tests build it with fake embeddings and a fake chat model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from rag_app.api import chat, kbs, search
from rag_app.api.auth import reader
from rag_app.api.errors import error_body, install_handlers, require_json
from rag_app.api.keys import ApiKey
from rag_app.api.metrics import MetricsMiddleware
from rag_app.api.state import ApiState
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

MAX_JSON_BYTES = 1024 * 1024  # a question is at most 4000 characters; history fits easily
REQUEST_THREADS = 128  # sync endpoints and streams each hold a worker thread while they wait


class BodyLimit:
    """413 before reading a body whose Content-Length is over the limit for its kind."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            multipart = headers.get("content-type", "").startswith("multipart/")
            limit = self.max_upload_bytes if multipart else MAX_JSON_BYTES
            length = headers.get("content-length", "0")
            if length.isdigit() and int(length) > limit:
                message = (
                    f"request body of {int(length)} bytes is over the limit of {limit} bytes"
                    + (" (setting max_upload_mb, per file)" if multipart else "")
                )
                response = Response(
                    content=json.dumps(error_body(413, message, "body_too_large")),
                    status_code=413,
                    media_type="application/json",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings,
    embeddings: Embeddings | None = None,
    llm: BaseChatModel | Callable[[], BaseChatModel] | None = None,
) -> FastAPI:
    """The API over `settings.data_dir`; `embeddings`/`llm` replace the configured ones (tests)."""
    state = ApiState(settings, embeddings, llm)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        yield
        state.close()

    app = FastAPI(
        title="rag_app HTTP API",
        version="1",
        description="OpenAI-compatible chat with verified citations, and REST for knowledge "
        "bases, documents, ingest jobs, search and answers. Send 'Authorization: Bearer <key>'.",
        lifespan=lifespan,
    )
    app.state.api = state
    install_handlers(app)
    json_only = [Depends(require_json)]
    app.include_router(chat.router, dependencies=json_only)
    app.include_router(search.router, dependencies=json_only)
    app.include_router(kbs.router)

    @app.get("/healthz", tags=["Operations"])
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers (no key needed)."""
        return {
            "status": "ok",
            "keys_required": state.keys.has_active(),
            "replica": state.jobs.replica,  # which process answered (behind a load balancer)
        }

    @app.get("/metrics", tags=["Operations"])
    def metrics(_: ApiKey = Depends(reader)) -> Response:  # noqa: B008
        """Prometheus text format: requests, latencies, tokens, errors per endpoint."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    max_upload = int(settings.max_upload_mb * 1024 * 1024) * kbs.MAX_FILES + MAX_JSON_BYTES
    app.add_middleware(BodyLimit, max_upload_bytes=max_upload)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app
