"""API errors: every failure leaves the server as OpenAI-shaped JSON with the right status code.

`{"error": {"message", "type", "param", "code"}}` is what the official `openai` client parses
into its exception classes (SEE: https://platform.openai.com/docs/guides/error-codes).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_app.errors import ConfigError, IngestError, KnowledgeBaseError, LLMError, RagError

log = logging.getLogger("rag_app.api")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error with its HTTP status, OpenAI code and a message saying what to do."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def from_rag_error(exc: RagError) -> ApiError:
    """Map the app's own errors to statuses: the message is already one clear line."""
    if isinstance(exc, LLMError):
        return ApiError(503, str(exc), "llm_unavailable")
    if isinstance(exc, KnowledgeBaseError):
        if "does not exist" in str(exc):
            return ApiError(404, str(exc), "kb_not_found")
        return ApiError(409, str(exc), "kb_conflict")
    if isinstance(exc, IngestError):
        return ApiError(400, str(exc), "bad_document")
    if isinstance(exc, ConfigError):
        return ApiError(400, str(exc), "invalid_value")
    return ApiError(400, str(exc))


def _describe(errors: list[Any]) -> tuple[str, str | None]:
    """One line naming each bad field: 'messages.0.role: Input should be ...'."""
    parts, param = [], None
    for err in errors[:5]:
        if err.get("type") == "json_invalid":  # the whole body is bad: no field to name
            parts.append(_malformed_json(err))
            continue
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        param = param or (where if loc else None)
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field (remove it; see /docs for the fields)")
            continue
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts), param


def _malformed_json(err: dict[str, Any]) -> str:
    """The parser's reason and where it stopped; FastAPI puts that offset in `loc`, but a
    character offset is no parameter name, so it goes in the message and `param` stays null."""
    reason = err.get("ctx", {}).get("error", "cannot parse")
    offsets = [p for p in err.get("loc", ()) if isinstance(p, int)]
    at = f" at character {offsets[0]}" if offsets else ""
    return f"malformed JSON{at} ({reason}): send a valid JSON document"


def install_handlers(app: FastAPI) -> None:
    """Route every exception through `error_body`; unexpected ones are logged, never leaked."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.message, exc.code, exc.param),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RagError)
    async def _rag(request: Request, exc: RagError) -> JSONResponse:
        return await _api(request, from_rag_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe(list(exc.errors()))
        return JSONResponse(error_body(400, message, "invalid_request", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint: see /docs for the API"
        return JSONResponse(
            error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in the API", exc_info=exc)
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        return JSONResponse(error_body(500, message, "internal_error"), status_code=500)


def require_json(request: Request) -> None:
    """415 for a request body that is not JSON (FastAPI would otherwise call it a missing field)."""
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415,
            f"content type {kind or 'missing'!r} is not supported: send JSON with the header "
            "'Content-Type: application/json'",
            "unsupported_media_type",
        )
