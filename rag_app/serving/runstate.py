"""Run-dir state beside a local vLLM server's pid file: its idle watcher process, the watcher's
last-activity note, and how long start-ups took here (serving/server.py writes the pid file)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

WATCHER_MODULE = "rag_app.serving.idle_watch"  # run by name: it imports serving/server.py
WATCHER_STOP_S = 10.0
STARTUP_TIMES = "startup-seconds.json"


def activity_path(pid_file: Path) -> Path:
    """Where the idle watcher of the server recorded in `pid_file` notes its last activity."""
    return pid_file.with_suffix(".activity")


def read_activity(pid_file: Path) -> float | None:
    """Epoch seconds of the server's last request as its watcher saw it; None if unwatched."""
    try:
        return float(activity_path(pid_file).read_text())
    except (OSError, ValueError):
        return None


def write_activity(pid_file: Path, when: float) -> None:
    write_atomic(activity_path(pid_file), f"{when:.1f}")


def remove_record(pid_file: Path) -> None:
    pid_file.unlink(missing_ok=True)
    activity_path(pid_file).unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def last_start_s(run_dir: Path, served_name: str) -> float | None:
    """Seconds the last start-up of `served_name` took here, for the next start-up notice."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        return float(json.loads((run_dir / STARTUP_TIMES).read_text())[served_name])
    return None


def record_start_s(run_dir: Path, served_name: str, seconds: float) -> None:
    path = run_dir / STARTUP_TIMES
    times: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, TypeError):
        times = dict(json.loads(path.read_text()))
    times[served_name] = round(seconds, 1)
    write_atomic(path, json.dumps(times))


def launch_watcher(
    pid_file: Path, metrics_url: str, idle_minutes: float, server_pid: int, log: Path
) -> int:
    """Start the detached process that stops the server once idle (serving/idle_watch.py).

    Its own session: Ctrl-C in the terminal that ran `rag ask` must not reach it, and stopping
    the server's process group must not kill it halfway through its own stop.
    """
    command = [sys.executable, "-m", WATCHER_MODULE, str(pid_file), metrics_url]
    command += [str(idle_minutes), str(server_pid)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ), start_new_session=True,
        )  # fmt: skip
    return process.pid


def stop_watcher(pid: object) -> None:
    """SIGTERM the idle watcher `pid` unless it is the caller (it is stopping the server)."""
    if not isinstance(pid, int) or pid == os.getpid():
        return
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if WATCHER_MODULE in " ".join(proc.cmdline()):  # not a pid reused by another program
            proc.terminate()
            proc.wait(timeout=WATCHER_STOP_S)
