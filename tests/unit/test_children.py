"""run_child: SIGTERM, SIGINT and SIGHUP sent to the parent stop the child and its children."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

# The parent runs run_child on a child that starts a grandchild, then both sleep.
PARENT = """
import sys
from rag_app.commands.children import run_child
child = [sys.executable, "-c",
         "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(600)']); time.sleep(600)"]
sys.exit(run_child(child))
"""


def _descendants(pid: int, want: int, deadline_s: float = 60.0) -> list[psutil.Process]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = psutil.Process(pid).children(recursive=True)
        if len(found) >= want:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {want} descendants of {pid}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_parent_stops_the_whole_tree(sig: signal.Signals, tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=Path(__file__).resolve().parents[2]
    )
    try:
        tree = _descendants(parent.pid, want=2)
        parent.send_signal(sig)
        code = parent.wait(timeout=60)
        assert code == 128 + sig
        gone, alive = psutil.wait_procs(tree, timeout=30)
        assert not alive, f"orphans left: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_exit_code_of_the_child_is_returned() -> None:
    from rag_app.commands.children import run_child

    assert run_child([sys.executable, "-c", "import sys; sys.exit(3)"]) == 3
    assert run_child([sys.executable, "-c", "pass"]) == 0
