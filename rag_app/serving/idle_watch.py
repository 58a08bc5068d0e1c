"""The idle watcher: a detached process, started with an on-demand vLLM server, that stops it
after idle_minutes without requests (`python -m rag_app.serving.idle_watch PIDFILE METRICS_URL
IDLE_MINUTES SERVER_PID`).

The app does not proxy vLLM, and clients may reach it by URL alone (`rag ui`, eval, other
programs), so the only signal that sees every request is vLLM's own /metrics.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import psutil

from rag_app.serving import ondemand, processes, runstate

METRICS_TIMEOUT_S = 5.0


def read_metrics(url: str) -> ondemand.Activity | None:
    """vLLM's activity counters, or None while it does not answer (starting, or too busy)."""
    try:
        response = httpx.get(url, timeout=METRICS_TIMEOUT_S)
        response.raise_for_status()
        return ondemand.parse_activity(response.text)
    except (httpx.HTTPError, ValueError):
        return None


def still_ours(pid_file: Path, server_pid: int) -> bool:
    """The pid file still names our server and it runs (else `rag llm stop` or a crash ended
    it, or a new server replaced it: this watcher has nothing left to do)."""
    try:
        recorded = json.loads(pid_file.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return False
    return recorded == server_pid and psutil.pid_exists(server_pid)


def log(message: str) -> None:
    """A line in the server's log (our stdout): why the server stopped must be findable."""
    print(f"=== {datetime.now(UTC).isoformat()} idle watcher: {message}", flush=True)


def watch(pid_file: Path, metrics_url: str, idle_minutes: float, server_pid: int) -> bool:
    """Poll until the server has been idle long enough, then stop it; True if we stopped it."""
    log(f"stops the server (pid {server_pid}) after {idle_minutes:g} min without requests")
    previous: ondemand.Activity | None = None
    last = time.time()
    while still_ours(pid_file, server_pid):
        current = read_metrics(metrics_url)
        now = time.time()
        last = ondemand.last_activity_after(previous, current, last, now)
        previous = current
        runstate.write_activity(pid_file, last)
        if ondemand.is_idle(last, now, idle_minutes):
            log(f"no request for {idle_minutes:g} min: stopping the server (pid {server_pid})")
            # The same path as `rag llm stop`: whole process group, pid and activity files.
            return processes.stop_recorded(pid_file)
        time.sleep(ondemand.poll_interval(idle_minutes))
    return False


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # `rag llm stop` ends us: leave quietly


def main(argv: list[str]) -> int:
    pid_file, metrics_url, minutes, pid = argv
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # detached: a terminal's Ctrl-C is not for us
    watch(Path(pid_file), metrics_url, float(minutes), int(pid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
