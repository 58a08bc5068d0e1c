"""On-demand serving policy: the notice shown before a slow start, and the idle decision.

Pure functions over plain values, used by serving/server.py (which starts the server and its
watcher), serving/idle_watch.py (the watcher process) and `rag llm status`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

BY_HAND = "by hand"  # `rag llm serve`
ON_DEMAND = "on demand"  # ask, chat, ui, serve, eval: whatever needed a model and found none
# Counters that grow with every request vLLM serves; gauges of requests in progress. Together
# they see every client of the port, including ones that reach it by URL without rag_app.
# SEE: https://docs.vllm.ai/en/latest/design/metrics.html
SERVED_COUNTERS = ("vllm:request_success_total", "vllm:prompt_tokens_total")
BUSY_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")
MIN_POLL_S = 0.5
MAX_POLL_S = 30.0


@dataclass(frozen=True)
class Activity:
    """What vLLM's /metrics says about use: `served` grows with each request, `busy` is now."""

    served: float
    busy: float


def parse_activity(metrics_text: str) -> Activity:
    """Sum the request counters and the in-progress gauges of a Prometheus /metrics text."""
    served = busy = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name in SERVED_COUNTERS:
                served += sample.value
            elif sample.name in BUSY_GAUGES:
                busy += sample.value
    return Activity(served, busy)


def last_activity_after(
    previous: Activity | None, current: Activity | None, last: float, now: float
) -> float:
    """The new time of last activity: `now` when a request ran since the previous look, when one
    is in progress, or when the server cannot say (starting or busy: never stop it blind)."""
    if current is None or previous is None or current.busy > 0 or current != previous:
        return now
    return last


def is_idle(last_activity: float, now: float, idle_minutes: float) -> bool:
    """True once `idle_minutes` (> 0; 0 = never) passed since the last activity."""
    return idle_minutes > 0 and now - last_activity >= idle_minutes * 60.0


def poll_interval(idle_minutes: float) -> float:
    """Seconds between looks at /metrics: a tenth of the timeout, within 0.5-30 s."""
    return min(MAX_POLL_S, max(MIN_POLL_S, idle_minutes * 6.0))


def idle_policy_text(idle_minutes: float) -> str:
    if idle_minutes <= 0:
        return "it keeps running until you stop it"
    return f"it stops itself after {_minutes(idle_minutes)} without requests"


def _minutes(minutes: float) -> str:
    if minutes >= 1 and float(minutes).is_integer():
        return f"{minutes:.0f} min"
    return f"{minutes * 60:.0f} s" if minutes < 1 else f"{minutes:.1f} min"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.0f} min"


def start_notice(
    model: str, address: str, idle_minutes: float, last_start_s: float | None, log: str
) -> str:
    """What a user sees at once when a command starts the model server for them: what starts
    and why, about how long it takes, what it costs, when it stops and how to stop it now."""
    took = (
        f"about {_duration(last_start_s)} (the last start here)"
        if last_start_s
        else "up to a few minutes on a CPU (the first start converts the model too)"
    )
    return (
        f"Starting the local model server (vLLM serving {model!r} on {address}) because none "
        f"is running and no RAG_LLM_BASE_URL is set.\n"
        f"This takes {took} and the server holds several GB of memory. It keeps running for "
        f"later questions; {idle_policy_text(idle_minutes)} (RAG_LLM_IDLE_MINUTES; 0 = never).\n"
        f"Stop it now with `rag llm stop`; its log: {log}"
    )


def ready_notice(seconds: float) -> str:
    return f"Model server ready after {_duration(seconds)}."


def idle_status_line(
    started_by: str | None, idle_minutes: float, last_activity: float | None, now: float
) -> str:
    """`rag llm status`: who started the server, its idle timeout and when it will stop."""
    who = f"started {started_by}" if started_by else "not started by rag"
    if started_by is None:
        return f"{who}; rag will not stop it"
    if idle_minutes <= 0:
        return f"{who}; no idle timeout (stop it with `rag llm stop`)"
    if last_activity is None:
        return f"{who}; idle timeout {_minutes(idle_minutes)} (not watched yet)"
    idle_s = max(0.0, now - last_activity)
    left = idle_minutes * 60.0 - idle_s
    when = f"stops in about {_duration(left)}" if left > 0 else "stopping now"
    return f"{who}; idle timeout {_minutes(idle_minutes)}; idle for {_duration(idle_s)}, {when}"
