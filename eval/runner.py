"""Eval runner: answer sampled questions concurrently, score each, append JSONL rows (resumable)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from eval.datasets import Dataset, Format, Question
from eval.kb_build import Retriever
from rag_app.errors import ConfigError, RagError
from rag_app.records import Mode

RESULTS = "results.jsonl"
CONFIG = "run.json"
SEGMENTS = "segments.jsonl"  # one line per (resumed) execution: rows written and wall seconds
Worker = Callable[[Question], dict[str, Any]]


class RunConfig(BaseModel):
    """What defines a run; a resumed run must match it (otherwise rows would mix two setups)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    format: Format
    dataset_sha256: str = ""
    mode: Mode = "direct"
    pipeline: Literal["rag", "langchain-stuff"] = "rag"
    retriever: Retriever = "hybrid"
    judge: Literal["offline", "llm"] = "offline"
    limit: int | None = None
    seed: int = 0
    kb: str = ""


def write_atomic(path: Path, text: str) -> None:
    """Temp file + fsync + rename: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_rows(out_dir: Path) -> list[dict[str, Any]]:
    """Rows of a run; a torn last line (killed mid-write) is ignored, later rows win per id."""
    path = out_dir / RESULTS
    rows: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            rows[str(row["id"])] = row
    return list(rows.values())


def done_ids(out_dir: Path) -> set[str]:
    """Ids answered without error: a resumed run skips them and retries failed ones."""
    return {str(r["id"]) for r in read_rows(out_dir) if not r.get("error")}


def drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line (the run was killed mid-write) so appends start clean."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def prepare_out_dir(out_dir: Path, config: RunConfig) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CONFIG
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        keys = ("dataset_sha256", "format", "mode", "pipeline", "retriever", "judge", "seed")
        diff = [k for k in keys if old.get(k) != config.model_dump().get(k)]
        if diff:
            raise ConfigError(
                f"{out_dir}: holds a run with other {', '.join(diff)}; use another --out "
                "or delete the folder"
            )
    write_atomic(path, config.model_dump_json(indent=2))


def _append(fh: Any, row: dict[str, Any]) -> None:
    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def _running(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Running means of the headline scores, for the progress bar."""
    out = {}
    for key, label in (
        ("f1", "F1"),
        ("exact", "EM"),
        ("factual_precision", "FP"),
        ("ndcg@10", "nDCG"),
    ):
        vals = [r["scores"][key] for r in rows if r.get("scores", {}).get(key) is not None]
        if vals:
            out[label] = f"{100 * sum(vals) / len(vals):.1f}"
    errors = sum(1 for r in rows if r.get("error"))
    if errors:
        out["errors"] = str(errors)
    return out


def execute(
    questions: Iterable[Question],
    worker: Worker,
    out_dir: Path,
    concurrency: int = 8,
    show_progress: bool = True,
    stop_after: int | None = None,
) -> int:
    """Run `worker` over the questions not yet done; returns how many rows were written now.

    stop_after writes that many rows and stops (how tests simulate an interrupted run).
    """
    from rag_app.serving.limiter import limiter_stats

    drop_torn_tail(out_dir / RESULTS)
    done = done_ids(out_dir)
    todo = [q for q in questions if q.qid not in done]
    fresh: list[dict[str, Any]] = []
    started = time.perf_counter()
    queue_before = limiter_stats()
    try:
        _run_pool(todo, worker, out_dir, concurrency, show_progress, stop_after, fresh)
    finally:
        if fresh:
            segment = {
                "rows": len(fresh),
                "seconds": time.perf_counter() - started,
                "llm_queue": queue_delta(queue_before, limiter_stats()),
            }
            with (out_dir / SEGMENTS).open("a", encoding="utf-8") as seg:
                _append(seg, segment)
    return len(fresh)


def queue_delta(
    before: dict[str, dict[str, float | int]], after: dict[str, dict[str, float | int]]
) -> dict[str, float | int]:
    """Requests that waited for an LLM slot during this segment (rag_app/serving/limiter.py)."""
    out: dict[str, float | int] = {"requests": 0, "waited": 0, "wait_s_total": 0.0}
    out |= {"wait_s_max": 0.0, "slow": 0, "limit": 0}
    for url, now in after.items():
        old = before.get(url, {})
        for key in ("requests", "waited", "wait_s_total", "slow"):
            out[key] += now[key] - old.get(key, 0)
        out["wait_s_max"] = max(out["wait_s_max"], now["wait_s_max"])
        out["limit"] = max(out["limit"], now["limit"])
    return out


def _run_pool(
    todo: list[Question],
    worker: Worker,
    out_dir: Path,
    concurrency: int,
    show_progress: bool,
    stop_after: int | None,
    fresh: list[dict[str, Any]],
) -> None:
    """Keep `concurrency` questions in flight; the main thread alone writes rows (no lock)."""
    from tqdm import tqdm

    bar = tqdm(total=len(todo), disable=not show_progress, desc="eval", unit="q")
    with (
        (out_dir / RESULTS).open("a", encoding="utf-8") as fh,
        ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
    ):
        pending: set[Future[dict[str, Any]]] = set()
        queue = iter(todo)
        for q in queue:
            pending.add(pool.submit(_safe, worker, q))
            if len(pending) >= concurrency:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                row = fut.result()
                _append(fh, row)
                fresh.append(row)
                bar.update(1)
                bar.set_postfix(_running(fresh), refresh=False)
                _stop_if_all_failing(fresh, out_dir)
                if stop_after is not None and len(fresh) >= stop_after:
                    for other in pending:
                        other.cancel()
                    bar.close()
                    return
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(_safe, worker, nxt))
    bar.close()


FAIL_FAST = 8  # this many failures before any success: the setup is broken, stop early


def _stop_if_all_failing(rows: list[dict[str, Any]], out_dir: Path) -> None:
    if len(rows) == FAIL_FAST and all(r.get("error") for r in rows):
        first = str(rows[0]["error"]).splitlines()[0]
        raise RagError(
            f"the first {FAIL_FAST} questions all failed, e.g. {first}; fix that and re-run with "
            f"--out {out_dir} to resume"
        )


def _safe(worker: Worker, question: Question) -> dict[str, Any]:
    """One failing question becomes an error row (retried on resume); the run goes on."""
    started = time.perf_counter()
    try:
        return worker(question)
    except Exception as exc:  # noqa: BLE001 - any failure of one question is recorded, not raised
        return {
            "id": question.qid,
            "question": question.question,
            "gold": list(question.answers),
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "timings": {"total_s": time.perf_counter() - started},
        }


def select(dataset: Dataset, limit: int | None, seed: int) -> list[Question]:
    from eval.datasets import sample_questions

    if not dataset.questions:
        raise ConfigError(f"{dataset.path}: no questions found")
    return sample_questions(dataset.questions, limit, seed)
