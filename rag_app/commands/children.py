"""Child processes of CLI commands (`rag ui`): run one in its own process group and make sure
SIGTERM, SIGINT and SIGHUP sent to `rag` stop the whole group, so no child outlives us."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_S = 10.0  # then SIGKILL: a child that ignores SIGTERM must not keep its port


def _stop_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, sig)


def run_child(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run `command` until it exits or we are signalled; return its exit code (128+n if killed).

    The child gets its own process group (start_new_session) so one killpg reaches its own
    children too (Streamlit's script runner threads, any subprocess it starts). Without the
    forwarding, `kill <rag pid>` left Streamlit serving on its port (subprocess.call).
    """
    proc = subprocess.Popen(list(command), env=dict(env) if env else None, start_new_session=True)
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        _stop_group(proc, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            try:
                code = proc.wait(timeout=GRACE_S if received else None)
                break
            except subprocess.TimeoutExpired:
                _stop_group(proc, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:  # an exception on our side: never leave the group behind
            _stop_group(proc, signal.SIGKILL)
            proc.wait()
        _stop_group(proc, signal.SIGKILL)  # grandchildren that outlived the group leader
    if received:
        return 128 + received[0]
    return code if code >= 0 else 128 - code
