"""Backpressure for LLM requests: an adaptive bound on requests in flight per endpoint.

A CPU vLLM server runs every request it accepts in one batch, so N concurrent prompts each take
about N times longer; six concurrent 740-token prompts needed over 60 s on a 2-core host and all
timed out (issue 13). Requests beyond the bound wait here, before the HTTP request starts, so
the request timeout counts only the time the server works on a request. The bound adapts:
it grows by one while requests finish well inside the timeout, and halves when one is slow or
times out (additive increase, multiplicative decrease, as in TCP congestion control).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

GROW_BELOW = 0.25  # a request that took under this share of the timeout lets the bound grow
SHRINK_ABOVE = 0.5  # one that took over this share (or timed out) halves the bound


@dataclass
class LimiterStats:
    """What callers report: how many requests waited for a slot, and for how long."""

    requests: int = 0
    waited: int = 0
    wait_s_total: float = 0.0
    wait_s_max: float = 0.0
    slow: int = 0  # requests that took over SHRINK_ABOVE of the timeout, or timed out
    limit: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "waited": self.waited,
            "wait_s_total": round(self.wait_s_total, 3),
            "wait_s_max": round(self.wait_s_max, 3),
            "slow": self.slow,
            "limit": self.limit,
        }


class InflightLimiter:
    """An adaptive semaphore: at most `limit` requests in flight, limit in [1, ceiling]."""

    def __init__(self, start: int, ceiling: int, timeout_s: float) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = max(1, min(start, self.ceiling))
        self.timeout_s = timeout_s
        self.inflight = 0
        self._grown = 0  # fast requests since the last change of the bound
        self._cond = threading.Condition()
        self.stats = LimiterStats(limit=self.limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot for the duration of a request; adapt the bound after it."""
        asked = time.monotonic()
        with self._cond:
            while self.inflight >= self.limit:
                self._cond.wait()
            self.inflight += 1
            waited = time.monotonic() - asked
            self.stats.requests += 1
            if waited > 0.001:
                self.stats.waited += 1
                self.stats.wait_s_total += waited
                self.stats.wait_s_max = max(self.stats.wait_s_max, waited)
        started, slow = time.monotonic(), True
        try:
            yield
            slow = time.monotonic() - started > SHRINK_ABOVE * self.timeout_s
        except GeneratorExit:  # the caller stopped reading a stream: says nothing of the server
            slow = False
            raise
        finally:
            self._release(slow, time.monotonic() - started)

    def _release(self, slow: bool, seconds: float) -> None:
        with self._cond:
            self.inflight -= 1
            if slow:
                self.stats.slow += 1
                self.limit = max(1, self.limit // 2)
                self._grown = 0
            elif seconds < GROW_BELOW * self.timeout_s and self.limit < self.ceiling:
                self._grown += 1
                if self._grown >= self.limit:  # one step per `limit` fast requests
                    self.limit += 1
                    self._grown = 0
            self.stats.limit = self.limit
            self._cond.notify_all()


_LIMITERS: dict[str, InflightLimiter] = {}
_LOCK = threading.Lock()


def limiter_for(base_url: str, start: int, ceiling: int, timeout_s: float) -> InflightLimiter:
    """The one limiter of an endpoint in this process (shared by every client of that URL)."""
    with _LOCK:
        found = _LIMITERS.get(base_url)
        if found is None:
            found = _LIMITERS[base_url] = InflightLimiter(start, ceiling, timeout_s)
        return found


def limiter_stats() -> dict[str, dict[str, float | int]]:
    """Stats of every endpoint's limiter, by base URL."""
    with _LOCK:
        return {url: lim.stats.as_dict() for url, lim in _LIMITERS.items()}
