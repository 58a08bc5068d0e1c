"""Runner: concurrent execution, JSONL rows, resume after interruption, config guard; summaries."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from eval.datasets import Question, sample_questions
from eval.runner import RESULTS, RunConfig, done_ids, execute, prepare_out_dir, read_rows
from eval.summary import percentile, summarize
from rag_app.errors import ConfigError, RagError

QUESTIONS = [Question(f"q{i}", f"question {i}?", ("yes",) if i % 2 else ()) for i in range(10)]


class CountingWorker:
    """Answers "yes" to everything and remembers which questions it was asked."""

    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.seen: list[str] = []
        self.fail = set(fail)
        self.lock = threading.Lock()

    def __call__(self, q: Question) -> dict[str, Any]:
        with self.lock:
            self.seen.append(q.qid)
        if q.qid in self.fail:
            raise RuntimeError("server went away")
        exact = 1.0 if q.answers else 0.0
        return {
            "id": q.qid,
            "question": q.question,
            "gold": list(q.answers),
            "has_answer": q.has_answer,
            "prediction": "yes",
            "abstained": False,
            "scores": {"exact": exact, "f1": exact, "factual_precision": 1.0, "claims": []},
            "timings": {"total_s": 0.1 * int(q.qid[1:])},
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
            "error": None,
        }


def test_resume_after_interruption_skips_done_ids(tmp_path: Path) -> None:
    first = CountingWorker()
    assert (
        execute(QUESTIONS, first, tmp_path, concurrency=1, show_progress=False, stop_after=4) == 4
    )
    assert len(done_ids(tmp_path)) == 4
    # A kill mid-write leaves a torn last line: it must be ignored, not crash the resume.
    with (tmp_path / RESULTS).open("a") as fh:
        fh.write('{"id": "q9", "quest')
    second = CountingWorker()
    assert execute(QUESTIONS, second, tmp_path, concurrency=3, show_progress=False) == 6
    assert not set(first.seen[:4]) & set(second.seen)
    assert sorted(r["id"] for r in read_rows(tmp_path)) == sorted(q.qid for q in QUESTIONS)


def test_failed_questions_are_recorded_and_retried(tmp_path: Path) -> None:
    execute(QUESTIONS, CountingWorker(fail={"q3"}), tmp_path, concurrency=4, show_progress=False)
    rows = {r["id"]: r for r in read_rows(tmp_path)}
    assert "server went away" in rows["q3"]["error"]
    assert "q3" not in done_ids(tmp_path)
    retry = CountingWorker()
    execute(QUESTIONS, retry, tmp_path, concurrency=4, show_progress=False)
    assert retry.seen == ["q3"]
    assert read_rows(tmp_path)[-1]["error"] is None  # the later row wins


def test_out_dir_refuses_a_different_run(tmp_path: Path) -> None:
    base = RunConfig(dataset="d.json", format="squad2", dataset_sha256="abc")
    prepare_out_dir(tmp_path, base)
    prepare_out_dir(tmp_path, base.model_copy(update={"limit": 50}))  # a larger sample resumes
    with pytest.raises(ConfigError, match="mode"):
        prepare_out_dir(tmp_path, base.model_copy(update={"mode": "cot"}))


def test_sample_is_seeded_and_keeps_the_mix() -> None:
    many = [Question(f"q{i}", "?", ("a",) if i % 3 else ()) for i in range(300)]
    a, b = sample_questions(many, 30, seed=1), sample_questions(many, 30, seed=1)
    assert a == b != sample_questions(many, 30, seed=2)
    assert sum(q.has_answer for q in a) == 20  # two thirds answerable, as in the file


def test_summary_and_cost(tmp_path: Path) -> None:
    execute(QUESTIONS, CountingWorker(), tmp_path, concurrency=2, show_progress=False)
    summary = summarize(read_rows(tmp_path), [{"rows": 10, "seconds": 30.0}])
    assert summary["answer"]["HasAns_exact"] == 100.0
    assert summary["answer"]["NoAns_exact"] == 0.0
    assert summary["answer"]["exact"] == 50.0
    assert summary["abstention"]["noans_accuracy"] == 0.0
    assert summary["cost"]["questions_per_min"] == 20.0
    assert summary["cost"]["latency_p50_s"] == pytest.approx(0.45)
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    json.dumps(summary)  # the summary is written as JSON


def test_a_broken_setup_stops_early(tmp_path: Path) -> None:
    every = {q.qid for q in QUESTIONS}
    with pytest.raises(RagError, match="all failed, e.g. RuntimeError: server went away"):
        execute(QUESTIONS, CountingWorker(fail=every), tmp_path, concurrency=1, show_progress=False)
    assert len(read_rows(tmp_path)) == 8  # recorded, and retried by the next run
