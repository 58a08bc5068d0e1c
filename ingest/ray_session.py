"""Ray for one ingest run (ingest/ray_ingest.py): start a local Ray or join a cluster, keep its
console quiet off a terminal, and size the embedding pool to the resources Ray reports.

`import ray` happens here and in ray_ingest.py alone, when a run starts: `rag --help` and plain
`rag ingest` never load it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rag_app.errors import IngestError

RAY_MISSING = 'Ray is not installed: pip install -e ".[ray]" (or run without --ray)'
LOCAL_MAX_WORKERS = 2  # default actors on a Ray started for the run: more only split the cores
ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception): ")


def require_ray() -> Any:
    """The `ray` module, or one clear IngestError when the `ray` extra is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401  (pandas, pyarrow: ray without [data] fails here)
    except ImportError as exc:
        raise IngestError(RAY_MISSING) from exc
    return ray


def why(exc: BaseException) -> str:
    """One line for a Ray error: its messages carry (remote) tracebacks, so the last
    `SomeError: ...` line of the deepest message that has one, else the first line."""
    chain = [exc]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    for link in reversed(chain):
        found = [line.strip() for line in str(link).splitlines() if ERROR_LINE.match(line.strip())]
        if found:
            return found[-1]
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _check_reachable(address: str) -> None:
    """HOST:PORT answers at all (Ray itself retries an unreachable address for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise IngestError(f"cannot reach Ray at ray_address={address}: {exc}") from exc


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 itself at `path` (appended): Ray's C++ core worker writes its
    notes there directly, past Python's logging (one per embedding pool, even on a clean run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def ray_session(
    address: str, verbose: bool = False, stderr_log: Path | None = None
) -> Iterator[None]:
    """Ray for one run: address "" starts a local Ray (stopped afterwards, also on error: no
    orphan processes), "auto" or HOST:PORT joins the cluster this machine belongs to. A Ray this
    process initialised already is used as it is. Progress bars only when verbose; Ray's console
    loggers then say warnings, otherwise errors only; `stderr_log` takes all of this process's
    stderr output meanwhile (Ray's C++ notes included)."""
    with stderr_to(stderr_log) if stderr_log else nullcontext(), _ray(address, verbose):
        yield


@contextmanager
def _ray(address: str, verbose: bool) -> Iterator[None]:
    ray = require_ray()
    if address.startswith("ray://"):  # SEE: https://github.com/ray-project/ray/issues/48682
        raise IngestError(
            f"ray_address={address}: Ray Data does not run through Ray Client (ray://); run "
            "`rag ingest --ray` on a node of the cluster (or with `ray job submit`) with "
            "ray_address=auto"
        )
    started = not ray.is_initialized()
    if started:
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if ":" in address:
            _check_reachable(address)
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(address="local", include_dashboard=False, **quiet)
        except Exception as exc:  # many causes (no cluster, authentication, ports): one line
            what = f"cannot join Ray at ray_address={address}" if address else "cannot start Ray"
            raise IngestError(f"{what}: {why(exc)}") from exc
    context = ray.data.DataContext.get_current()
    # plain tqdm on this terminal: Ray's own tqdm draws through worker logs, which stay off
    wanted = {"enable_progress_bars": verbose, "use_ray_tqdm": False}
    wanted["print_on_execution_start"] = False
    saved = {name: getattr(context, name, None) for name in wanted}
    for name, wish in wanted.items():
        setattr(context, name, wish)
    consoles = [
        handler
        for logger in ("ray", "ray.data")
        for handler in logging.getLogger(logger).handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
    ]
    levels = [handler.level for handler in consoles]
    for handler in consoles:
        handler.setLevel(logging.WARNING if verbose else logging.ERROR)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is not None:
                setattr(context, name, old)
        for handler, level in zip(consoles, levels, strict=True):
            handler.setLevel(level)
        if started:
            ray.shutdown()


def plan_workers(requested: int, capped: bool) -> tuple[int, dict[str, Any], int]:
    """(embedding actors, the Ray resources of each, its embedding threads) for the Ray in use.

    Without `requested`: one actor per GPU, else per CPU (at most LOCAL_MAX_WORKERS if capped).
    Together the actors ask for all CPUs but one, which the parse tasks need (actors holding
    every CPU left the tasks waiting forever). On one node the actors split its cores' threads.
    """
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = max(1, int(resources.get("CPU", 1))), int(resources.get("GPU", 0))
    if gpus:  # never more actors than GPUs: the others would wait for one forever
        n = min(requested, gpus) if requested > 0 else gpus
    else:
        n = requested if requested > 0 else min(cpus, LOCAL_MAX_WORKERS) if capped else cpus
    one_node = sum(1 for node in ray.nodes() if node.get("Alive")) == 1
    threads = 0 if gpus else max(1, cpus // n) if one_node else 1
    return n, {"num_cpus": min(1.0, (cpus - 1) / n)} | ({"num_gpus": 1} if gpus else {}), threads
