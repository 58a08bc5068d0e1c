"""The local vLLM server's processes: is a pid still our server, and stopping its whole family
(process group, children that left it, its idle watcher) the same way from every caller."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import psutil

from rag_app.serving import runstate

STOP_GRACE_S = 10.0  # vLLM exits in ~1 s; uvicorn may wait for in-flight streams


def is_vllm(proc: psutil.Process) -> bool:
    try:
        return "vllm" in " ".join(proc.cmdline()).lower()
    except psutil.Error:
        return False


def vllm_alive(pid: int | None) -> bool:
    """A running vLLM process (a stale pid file may name a pid reused by something else)."""
    if pid is None or not psutil.pid_exists(pid):
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and is_vllm(proc)
    except psutil.Error:
        return False


def stop_recorded(pid_file: Path) -> bool:
    """Stop the server and idle watcher `pid_file` names (`rag llm stop` and the watcher)."""
    try:
        record = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return False
    runstate.stop_watcher(record.get("watcher_pid"))
    family = server_family(int(str(record["pid"])))
    if not any(is_vllm(proc) for proc in family):  # stale pid file: the pid now names another
        family = []
    if family:
        kill_all(int(str(record["pid"])), family)
    runstate.remove_record(pid_file)
    return bool(family)


def server_family(pid: int) -> list[psutil.Process]:
    """Processes of the server's group (even if its leader died) plus children that left it."""
    family: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pid and proc.status() != psutil.STATUS_ZOMBIE:
                family[proc.pid] = proc
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            family[child.pid] = child
    return list(family.values())


def kill_all(pgid: int, family: list[psutil.Process]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)  # start_new_session=True made the server its group leader
        for proc in family:  # children that left the group
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(family, timeout=STOP_GRACE_S if sig == signal.SIGTERM else 5)
        if not alive:
            return
