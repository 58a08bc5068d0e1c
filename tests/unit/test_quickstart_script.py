"""scripts/quickstart.sh's order and overlap, with stand-ins for setup.sh and `rag`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each call logs "start|end <command> <monotonic ns>"; prepare and serve are the slow ones.
FAKE_RAG = """#!/usr/bin/env bash
log() { echo "$1 $2 $(date +%s%N)" >> "$(dirname "$0")/calls.log"; }
log start "$1"
case "$1" in
  model) sleep 0.6 ;;
  ingest) sleep 0.2; [ -z "${FAIL_INGEST:-}" ] || { log end "$1"; exit 3; } ;;
  llm) sleep 1.5 ;;
  ask) sleep 0.1 ;;
esac
log end "$1"
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "quickstart.sh", tmp_path / "scripts" / "quickstart.sh")
    (tmp_path / "scripts" / "setup.sh").write_text("echo setup ran\n")
    rag = tmp_path / ".venv" / "bin" / "rag"
    rag.parent.mkdir(parents=True)
    rag.write_text(FAKE_RAG)
    rag.chmod(0o755)
    return tmp_path


def _run(tree: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(tree / "scripts" / "quickstart.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "QUICKSTART_NO_UI": "1", **env},
        check=False,
    )


def _calls(tree: Path) -> dict[tuple[str, str], int]:
    lines = (tree / ".venv" / "bin" / "calls.log").read_text().split("\n")
    return {(kind, cmd): int(ns) for kind, cmd, ns in (line.split() for line in lines if line)}


def test_quickstart_overlaps_ingest_and_server_start_and_prints_phases(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    done = _run(tree)
    assert done.returncode == 0, done.stderr
    calls = _calls(tree)
    assert calls[("start", "ingest")] < calls[("end", "model")]  # ingest beside prepare
    assert calls[("start", "llm")] >= calls[("end", "model")]  # the server needs the model
    assert calls[("start", "ask")] >= calls[("end", "ingest")]  # the question needs the KB
    assert calls[("start", "ask")] < calls[("end", "llm")]  # ask loads while vLLM starts
    for phase in ("setup", "prepare", "ingest", "server", "ask", "total"):
        assert f"  {phase} " in done.stdout
    assert "done: the vLLM server keeps running" in done.stdout


def test_quickstart_stops_when_background_ingest_fails(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    done = _run(tree, FAIL_INGEST="1")
    assert done.returncode == 3
    assert "quickstart: ingest failed (exit 3)" in done.stderr
    assert ("start", "ask") not in _calls(tree)
    assert "quickstart phases" in done.stdout
