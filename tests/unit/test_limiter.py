"""InflightLimiter: bounds requests in flight, records waits, adapts the bound (AIMD)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from rag_app.serving.limiter import InflightLimiter


def _run(limiter: InflightLimiter, requests: int, workers: int) -> int:
    """Run requests through the limiter; return the most that were ever in flight at once."""
    lock, state = threading.Lock(), {"now": 0, "most": 0}
    release = threading.Event()

    def request(_: int) -> None:
        with limiter.slot():
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            release.wait(0.02)  # overlap the requests; no assertion depends on this duration
            with lock:
                state["now"] -= 1

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(request, range(requests)))
    return state["most"]


def test_never_more_in_flight_than_the_bound_and_waits_are_counted() -> None:
    limiter = InflightLimiter(start=2, ceiling=2, timeout_s=1e6)
    assert _run(limiter, requests=12, workers=6) <= 2
    assert limiter.stats.requests == 12
    assert limiter.stats.waited >= 1 and limiter.stats.wait_s_max > 0
    assert limiter.inflight == 0


def test_slow_requests_halve_the_bound_down_to_one() -> None:
    limiter = InflightLimiter(start=8, ceiling=16, timeout_s=1e-6)  # every request is "slow"
    _run(limiter, requests=5, workers=1)
    assert limiter.limit == 1
    assert limiter.stats.slow == 5


def test_fast_requests_grow_the_bound_up_to_the_ceiling() -> None:
    limiter = InflightLimiter(start=1, ceiling=3, timeout_s=1e6)
    _run(limiter, requests=20, workers=1)
    assert limiter.limit == 3


def test_a_failed_request_counts_as_slow_and_frees_its_slot() -> None:
    limiter = InflightLimiter(start=4, ceiling=4, timeout_s=1e6)
    try:
        with limiter.slot():
            raise TimeoutError("server too slow")
    except TimeoutError:
        pass
    assert limiter.inflight == 0 and limiter.limit == 2 and limiter.stats.slow == 1
