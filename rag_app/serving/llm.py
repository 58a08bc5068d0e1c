"""LLM client: langchain-openai's ChatOpenAI against an OpenAI-compatible vLLM, local or remote."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import httpx
import openai
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from rag_app.errors import LLMError
from rag_app.serving.limiter import InflightLimiter, limiter_for
from rag_app.settings import Settings

_served_names: dict[str, str] = {}


def _http_errors(name: str) -> tuple[type[Exception], ...]:
    """`name` from httpx and from httpx2 (openai 3.x's own transport), whichever are installed."""
    found: list[type[Exception]] = []
    for module_name in ("httpx", "httpx2"):
        try:
            found.append(getattr(importlib.import_module(module_name), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


_TIMEOUTS: tuple[type[Exception], ...] = (
    openai.APITimeoutError,
    *_http_errors("TimeoutException"),
)
_TRANSPORT: tuple[type[Exception], ...] = (
    openai.APIConnectionError,
    *_http_errors("TransportError"),
)
_HTTP = _http_errors("HTTPError")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# `rag llm status` knows only the local server; `rag doctor` checks RAG_LLM_BASE_URL too (a
# remote server or a vllm-router in front of several)
STATUS_HINT = "`rag llm status` shows the local server, `rag doctor` a RAG_LLM_BASE_URL"


@contextmanager
def llm_errors(base_url: str | None = None) -> Iterator[None]:
    """Turn connection, timeout and HTTP errors from openai/httpx into one clear LLMError line."""
    where = base_url or "the LLM endpoint"
    try:
        yield
    except _TIMEOUTS as exc:
        raise LLMError(
            f"the LLM at {where} did not answer in time (RAG_LLM_REQUEST_TIMEOUT): {_reason(exc)}"
        ) from exc
    except _TRANSPORT as exc:
        # a refused, reset or half-closed connection: the server is down or died mid-request
        raise LLMError(
            f"lost connection to the LLM at {where} ({_reason(exc)}): is the server running? "
            f"{STATUS_HINT}"
        ) from exc
    except openai.APIStatusError as exc:
        raise LLMError(
            f"the LLM at {where} refused the request with HTTP {exc.status_code}: {_reason(exc)}"
        ) from exc
    except openai.APIError as exc:  # e.g. an error event in a stream when the engine dies
        raise LLMError(f"the LLM at {where} failed mid-request: {_reason(exc)}") from exc
    except _HTTP as exc:
        raise LLMError(f"HTTP error talking to the LLM at {where}: {_reason(exc)}") from exc


def ensure_llm_endpoint(settings: Settings) -> str:
    """The OpenAI base URL to use: RAG_LLM_BASE_URL as is (must answer), else the local server."""
    if settings.llm_base_url:
        url = settings.llm_base_url.rstrip("/")
        probe_timeout = min(10.0, settings.llm_request_timeout)
        try:
            response = httpx.get(f"{url}/models", timeout=probe_timeout)
            if response.status_code < 500:  # a 404 is a wrong URL (no /v1?), a 401 a missing key
                response.raise_for_status()
            # a 5xx came from a live endpoint: a router in front of a server that just died
            # answers so until its health probe notices, while it re-routes real requests; the
            # request itself reports any failure that lasts
        except httpx.HTTPError as exc:
            raise LLMError(
                f"cannot reach RAG_LLM_BASE_URL={url} ({_reason(exc)}): start that server, "
                "fix the URL, or unset RAG_LLM_BASE_URL to use the local vLLM server"
            ) from exc
        return url
    from rag_app.serving import server

    return server.serve(settings).base_url


def served_model_name(base_url: str, settings: Settings) -> str:
    """RAG_LLM_SERVED_NAME, else the first model the server lists (cached per URL)."""
    if settings.llm_served_name:
        return settings.llm_served_name
    if base_url not in _served_names:
        from rag_app.serving.server import served_models

        models = served_models(base_url, timeout=min(10.0, settings.llm_request_timeout))
        if not models:
            raise LLMError(f"{base_url}/models lists no model: is it an OpenAI-compatible server?")
        _served_names[base_url] = models[0]
    return _served_names[base_url]


# vLLM ends a request it gave up on (server stopping, engine failure) with these finish reasons
# instead of an HTTP error; a caller must not mistake the truncated text for an answer.
FAILED_FINISH_REASONS = ("abort", "error")


def _check_finish(info: dict[str, Any] | None, where: str | None) -> bool:
    """True when this chunk ends the choice normally; LLMError when it ends it as a failure."""
    reason = (info or {}).get("finish_reason")
    if reason in FAILED_FINISH_REASONS:
        raise LLMError(
            f"the LLM at {where or 'the endpoint'} ended the request with finish_reason={reason!r} "
            f"(server stopping or engine failure): retry; {STATUS_HINT}"
        )
    return reason is not None


def _truncated_stream(where: str | None) -> LLMError:
    # A server shutting down may close the event stream cleanly mid-answer; without a
    # finish_reason the text is a fragment, not an answer.
    return LLMError(
        f"the LLM at {where or 'the endpoint'} closed the stream before finishing the answer "
        f"(server stopped or restarted?): retry; {STATUS_HINT}"
    )


def _no_limit() -> AbstractContextManager[None]:
    return nullcontext()


class ServedChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose transport failures surface as LLMError (one clear line, no hang), and
    whose synchronous requests wait for a slot of the endpoint's InflightLimiter first.

    With `restart_server` set (the local server rag starts on demand), a refused connection
    starts the server again and retries once: it stops itself when idle (llm_idle_minutes), and
    long-lived clients (`rag chat`, the UI, `rag serve`) must not fail on the next question.
    """

    limiter: InflightLimiter | None = None
    restart_server: Callable[[], bool] | None = None

    def _slot(self) -> AbstractContextManager[None]:
        return self.limiter.slot() if self.limiter else _no_limit()

    def _restarted(self, exc: LLMError) -> bool:
        cause = exc.__cause__
        if self.restart_server is None or isinstance(cause, _TIMEOUTS):
            return False  # a slow server is not a stopped one
        return isinstance(cause, _TRANSPORT) and self.restart_server()

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return self._generate_once(*args, **kwargs)
        except LLMError as exc:
            if not self._restarted(exc):
                raise
        return self._generate_once(*args, **kwargs)

    def _generate_once(self, *args: Any, **kwargs: Any) -> ChatResult:
        with self._slot(), llm_errors(self.openai_api_base):
            result = super()._generate(*args, **kwargs)
        for generation in result.generations:
            _check_finish(generation.generation_info, self.openai_api_base)
        return result

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        streamed = False
        try:
            for chunk in self._stream_once(*args, **kwargs):
                streamed = True
                yield chunk
            return
        except LLMError as exc:
            if streamed or not self._restarted(exc):  # never repeat half an answer
                raise
        yield from self._stream_once(*args, **kwargs)

    def _stream_once(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        finished = False
        with self._slot(), llm_errors(self.openai_api_base):
            for chunk in super()._stream(*args, **kwargs):
                finished = _check_finish(chunk.generation_info, self.openai_api_base) or finished
                yield chunk
        if not finished:
            raise _truncated_stream(self.openai_api_base)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        with llm_errors(self.openai_api_base):
            result = await super()._agenerate(*args, **kwargs)
        for generation in result.generations:
            _check_finish(generation.generation_info, self.openai_api_base)
        return result

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        finished = False
        with llm_errors(self.openai_api_base):
            async for chunk in super()._astream(*args, **kwargs):
                finished = _check_finish(chunk.generation_info, self.openai_api_base) or finished
                yield chunk
        if not finished:
            raise _truncated_stream(self.openai_api_base)


def chat_model(settings: Settings, **overrides: Any) -> ChatOpenAI:
    """A chat client for the configured endpoint, starting the local vLLM server when needed.

    `overrides` go to ChatOpenAI (e.g. temperature=0.7, max_tokens=64, model="name").
    `.stream()` yields token chunks; `.invoke()` returns the whole message; both time out after
    RAG_LLM_REQUEST_TIMEOUT per read and raise LLMError when the server is down or dies.
    """
    fixed_url = overrides.pop("base_url", None)
    url = fixed_url or ensure_llm_endpoint(settings)
    params: dict[str, Any] = {
        "base_url": url,
        "api_key": settings.llm_api_key,
        "temperature": settings.llm_temperature,
        "max_tokens": settings.llm_max_tokens,
        "timeout": settings.llm_request_timeout,
        "max_retries": settings.llm_max_retries,
        "stream_usage": True,
    }
    params.update(overrides)
    if "model" not in params:
        params["model"] = served_model_name(url, settings)
    client = ServedChatOpenAI(**params)
    client.limiter = endpoint_limiter(url, settings)
    if not (fixed_url or settings.llm_base_url):
        client.restart_server = _local_restart(settings)
    return client


def _local_restart(settings: Settings) -> Callable[[], bool]:
    """Start the local server again when it is down; False when it is up (another failure)."""

    def restart() -> bool:
        from rag_app.serving import server

        if server.status(settings).healthy:
            return False
        server.serve(settings)
        return True

    return restart


def endpoint_limiter(url: str, settings: Settings) -> InflightLimiter:
    """The in-flight bound of this endpoint (see rag_app/serving/limiter.py)."""
    fixed = settings.llm_max_inflight
    if fixed:
        return limiter_for(url, fixed, fixed, settings.llm_request_timeout)
    # A server on this machine shares its cores with us: start low and let fast replies raise
    # the bound. A remote (GPU) server batches many requests well.
    host = httpx.URL(url).host
    start = 2 if host in ("127.0.0.1", "localhost", "::1") else 8
    return limiter_for(url, start, 64, settings.llm_request_timeout)
