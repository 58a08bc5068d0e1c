"""Access: who is calling (API key), what role they have, which KBs they may use, how often.

Every endpoint but /healthz depends on `caller`. With no active key in the store the server is
in local mode (only ever bound to loopback, see `rag serve`): every request acts as an admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, Request

from rag_app.api.errors import ApiError
from rag_app.api.keys import ALL_KBS, ApiKey, Role
from rag_app.api.limits import RateLimiter

if TYPE_CHECKING:
    from rag_app.api.state import ApiState

LOCAL = ApiKey(
    id="local", name="local (no keys configured)", role="admin", kbs=(ALL_KBS,), created_at=""
)


def api_state(request: Request) -> ApiState:
    return request.app.state.api  # type: ignore[no-any-return]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def caller(request: Request) -> ApiKey:
    """The calling key (401 when missing, unknown or revoked; 429 over its rate limit)."""
    state = api_state(request)
    if not state.keys.has_active():
        key = LOCAL
    else:
        token = _bearer(request)
        if token is None:
            raise ApiError(
                401,
                "missing API key: send the header 'Authorization: Bearer rag-…' "
                "(create one with `rag keys create`)",
                "missing_api_key",
            )
        found = state.keys.check(token)
        if found is None:
            raise ApiError(
                401,
                "invalid API key: check it, or create one with `rag keys create`",
                "invalid_api_key",
            )
        if not found.active:
            raise ApiError(
                401,
                f"API key {found.id} was revoked on {found.revoked_at}: ask an admin for a new one",
                "revoked_api_key",
            )
        key = found
    wait = state.limiter.take(key.id)
    if wait:
        raise ApiError(
            429,
            f"rate limit of {state.limiter.per_minute} requests per minute exceeded for key "
            f"{key.id}: retry in {wait:.1f} s (setting api_rate_limit)",
            "rate_limit_exceeded",
            headers={"Retry-After": RateLimiter.retry_after(wait)},
        )
    request.state.key = key
    return key


def role(minimum: Role) -> Callable[..., ApiKey]:
    """A dependency: the caller, when its role is at least `minimum` (else 403)."""

    def check(key: ApiKey = Depends(caller)) -> ApiKey:  # noqa: B008 - FastAPI's idiom
        if not key.at_least(minimum):
            raise ApiError(
                403,
                f"API key {key.id} has role {key.role}; this needs {minimum} or higher",
                "insufficient_role",
            )
        return key

    return check


def check_kb(key: ApiKey, kb: str) -> None:
    """403 unless the key may use `kb` (asked before existence, so no name leaks to others)."""
    if not key.may_use(kb):
        raise ApiError(
            403,
            f"API key {key.id} has no access to knowledge base {kb!r}",
            "kb_forbidden",
            param="kb",
        )


def visible_kbs(key: ApiKey, names: list[str]) -> list[str]:
    return [n for n in names if key.may_use(n)]


reader = role("reader")
editor = role("editor")
admin = role("admin")
