"""Cold CLI commands: `rag --help`, `kb list`, `search`, `ingest` of one file, `ask --json`,
before vs after.

Each timed run is a fresh `python -m rag_app.cli ...` process (cold interpreter: every import
is paid again). The OS page cache is warm: each command runs once untimed per version first, so
the numbers say what a user pays for imports and model loading, not for disk reads. "before" is
a pristine checkout of an older commit (make it with `git worktree add /tmp/rag_before COMMIT`;
never `git stash` a shared tree) run through PYTHONPATH from its own folder, checked to import
from there; "after" is this tree. The two alternate run by run, so load from other processes
hits both alike. Each version ingests the same documents into its own temp data dir first (the
"after" ingest also leaves the ONNX export of the embedding model there, as any ingest does).
`rag ingest ONE_FILE` re-ingests one small new file into the existing KB each run (a fresh copy
under a new name and new words, so every run adds a document: load, chunk, embed, write).
`ask` needs a running server: --llm-url (default $RAG_LLM_BASE_URL, else the shared test server).

    python -m bench.cli_cold --before /tmp/rag_before --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, print_section, write_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUESTION = "When was the Harrow Point lighthouse first lit?"
COMMANDS: dict[str, list[str]] = {
    "rag --help": ["--help"],
    "rag kb list": ["kb", "list"],
    "rag search": ["search", "lighthouse"],
    "rag ingest ONE_FILE": ["ingest", "{one_file}", "--json"],
    "rag ask --json": ["ask", "--json", QUESTION],
}
TARGETS_S = {"rag --help": 1.0, "rag kb list": 1.0, "rag search": 3.0, "rag ingest ONE_FILE": 1.5}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.cli_cold", description=__doc__)
    p.add_argument("--before", type=Path, required=True, help="pristine checkout to compare with")
    p.add_argument("--runs", type=int, default=5, help="timed runs per command and version")
    default_docs = REPO / "samples" / "docs"
    p.add_argument(
        "--docs",
        type=Path,
        default=default_docs if default_docs.is_dir() else REPO / "samples",
        help="documents both versions ingest (default: samples/docs)",
    )
    p.add_argument(
        "--llm-url",
        default=os.environ.get("RAG_LLM_BASE_URL", "http://127.0.0.1:8765/v1"),
        help="warm OpenAI-compatible server for `rag ask` ('' skips ask)",
    )
    p.add_argument("--name", default="cli_cold", help="results file bench/results/NAME.json")
    return p.parse_args(argv)


class Version:
    """One checkout of the app, run as `python -m rag_app.cli` from its own folder."""

    def __init__(self, label: str, root: Path, data_dir: Path, llm_url: str) -> None:
        self.label, self.root = label, root.resolve()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(self.root))
        env.update(RAG_DATA_DIR=str(data_dir))
        if llm_url:
            env["RAG_LLM_BASE_URL"] = llm_url
            # a shared server may be busy: measure the command, do not fail it on a queue wait
            env["RAG_LLM_REQUEST_TIMEOUT"] = "300"
        self.env = env

    def run(self, args: Sequence[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
        """(wall s, CPU s of the child, result); cwd is the checkout, so `-m` finds its code."""
        args = [_one_file() if a == "{one_file}" else a for a in args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "rag_app.cli", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, done

    def check_imports_from_root(self) -> None:
        code = "import rag_app, ingest; print(rag_app.__file__); print(ingest.__file__)"
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=self.root, env=self.env, capture_output=True,
            text=True, check=True,
        ).stdout.split()  # fmt: skip
        stray = [f for f in out if not Path(f).resolve().is_relative_to(self.root)]
        if stray:
            raise SystemExit(f"{self.label} imports {stray}, not from {self.root}")


_ONE_FILE_RUNS = [0]
_ONE_FILE_DIR = Path(tempfile.gettempdir()) / f"rag-cli-cold-one-{os.getpid()}"


def _one_file() -> str:
    """A new small text file for each `rag ingest ONE_FILE` run (so none is 'unchanged')."""
    _ONE_FILE_RUNS[0] += 1
    n = _ONE_FILE_RUNS[0]
    folder = _ONE_FILE_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"note-{n}.txt"
    path.write_text(f"Note {n}: the ferry to Tolwen leaves at {n % 24:02d}:15 on weekdays.\n")
    return str(path)


def ingest(version: Version, docs: Path) -> float:
    wall, _, done = version.run(["ingest", str(docs.resolve()), "--json"])
    if done.returncode != 0:
        raise SystemExit(f"{version.label}: ingest failed:\n{done.stderr[-2000:]}")
    return wall


def measure(versions: list[Version], commands: dict[str, list[str]], runs: int) -> dict:
    """Alternate versions run by run. A failed run is recorded, not timed (a crash looks fast);
    `ask` can fail when the shared model server is overloaded (a request timeout)."""
    samples: dict[str, dict[str, dict[str, list]]] = {}
    for command, args in commands.items():
        per = samples.setdefault(
            command, {v.label: {"wall": [], "cpu": [], "failed": []} for v in versions}
        )
        for v in versions:
            v.run(args)  # untimed: warms the page cache for this version's files
        for _ in range(runs):
            for v in versions:
                wall, cpu, done = v.run(args)
                if done.returncode != 0:
                    per[v.label]["failed"].append(done.stderr.strip()[-300:])
                    continue
                per[v.label]["wall"].append(wall)
                per[v.label]["cpu"].append(cpu)
        print(f"  {command}: done", flush=True)
    return samples


def summarise(samples: dict) -> list[dict[str, Any]]:
    rows = []
    for command, per in samples.items():
        row: dict[str, Any] = {"command": command}
        for label in ("before", "after"):
            s = per[label]
            ok = bool(s["wall"])
            row[f"{label} p50 s"] = percentile(s["wall"], 50) if ok else None
            row[f"{label} min s"] = min(s["wall"]) if ok else None
            row[f"{label} cpu p50 s"] = percentile(s["cpu"], 50) if ok else None
        row["speed-up (p50)"] = (
            row["before p50 s"] / row["after p50 s"]
            if row["before p50 s"] and row["after p50 s"]
            else None
        )
        target = TARGETS_S.get(command)
        row["target s"] = target
        met = None if target is None or row["after p50 s"] is None else row["after p50 s"] < target
        row["after p50 meets target"] = met
        row["failed runs (before/after)"] = (
            f"{len(per['before']['failed'])}/{len(per['after']['failed'])}"
        )
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    commands = dict(COMMANDS)
    if not args.llm_url:
        commands.pop("rag ask --json")
    with tempfile.TemporaryDirectory(prefix="rag-cli-cold-") as tmp:
        versions = [
            Version("before", args.before, Path(tmp) / "before", args.llm_url),
            Version("after", REPO, Path(tmp) / "after", args.llm_url),
        ]
        for v in versions:
            v.check_imports_from_root()
        load_start = os.getloadavg()[0]
        ingest_s = {v.label: ingest(v, args.docs) for v in versions}
        print(f"ingested {args.docs} ({json.dumps(ingest_s)} s)", flush=True)
        try:
            samples = measure(versions, commands, args.runs)
        finally:
            shutil.rmtree(_ONE_FILE_DIR, ignore_errors=True)
    rows = summarise(samples)
    load_end = os.getloadavg()[0]
    title = f"cold CLI commands, {args.runs} runs each (page cache warm; load avg 1m "
    title += f"{load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} cores)"
    print_section(title, rows)
    print("cpu = user+sys seconds of the command's process: less sensitive than wall time to")
    print("other load on the machine, but it adds up all threads.")
    params = {
        "before": str(args.before.resolve()),
        "before_commit": _commit(args.before),
        "after_commit": _commit(REPO) + " + working tree",
        "runs": args.runs,
        "docs": str(args.docs),
        "llm_url": args.llm_url,
        "load_avg_1m_at_start": round(load_start, 2),
        "load_avg_1m_at_end": round(load_end, 2),
        "note": "fresh process per run; OS page cache warm (one untimed run per command and "
        "version first); versions alternate run by run; cpu = user+sys of the child",
    }
    results = {"rows": rows, "ingest_s": ingest_s, "samples": samples}
    print(f"wrote {write_results(args.name, results, params)}")


def _commit(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
