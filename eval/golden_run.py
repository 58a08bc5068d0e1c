"""Quality runs: a golden set asked of its knowledge base, scored per question, kept as history.

Each run is an eval run folder (`<data_dir>/quality/<kb>/runs/<stamp>/`: results.jsonl written
by eval.runner.execute, then summary.json), so the UI's "Evaluate" and
`rag eval run --kb NAME --golden FILE` produce the same files and figures. With store = postgres
the finished run (summary and rows) goes to the shared database instead, and its working folder
is a temporary one. Each answer goes
through rag_app.pipeline.ask, the call the chat makes.

Verdicts: a confident answer is right when its F1 against the expected answer is >= 0.5 or it
contains it (for an expected "" the right move is to abstain); tentative and abstained answers
are counted as such. Strict figures count a tentative answer as not answered, lenient ones as
answered.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.datasets import Question
from eval.golden import GoldenItem, quality_dir
from eval.runner import execute, read_rows, write_atomic
from eval.scoring import answer_scores, prediction_text
from eval.summary import mean
from ingest.pg_db import in_database
from rag_app.records import Mode
from rag_app.serving.presets import preset_for
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase

SUMMARY = "summary.json"
Progress = Callable[[int, int], None]
HEADLINE = {  # key -> label (percentages, except support)
    "right": "Right %",
    "lenient_right": "Right incl. tentative %",
    "wrong": "Wrong %",
    "tentative": "Tentative %",
    "abstained": "Abstained %",
    "f1": "F1",
    "source_hit": "Expected source cited %",
    "support": "Mean support",
}


def runs_dir(settings: Settings, kb: str) -> Path:
    return quality_dir(settings, kb) / "runs"


def _questions(items: list[GoldenItem]) -> list[Question]:
    return [
        Question(
            qid=f"q{i:04d}",
            question=item.question,
            answers=(item.expected,) if item.expected else (),
            gold_sources=(item.source,) if item.source else (),
        )
        for i, item in enumerate(items, start=1)
    ]


def verdict(kind: str, expected: str, right: bool) -> str:
    if kind == "abstained":
        return "abstained (right)" if not expected else "abstained"
    if kind == "tentative":
        return "tentative"
    return "right" if right else "wrong"


def golden_worker(
    kb: KnowledgeBase, settings: Settings, mode: Mode, llm: BaseChatModel | None
) -> Callable[[Question], dict[str, Any]]:
    from rag_app.pipeline import ask

    def work(q: Question) -> dict[str, Any]:
        answer = ask(q.question, kb=kb, mode=mode, settings=settings, llm=llm)
        expected = q.answers[0] if q.answers else ""
        lenient = answer_scores(q, prediction_text(answer, lenient=True))
        scores = answer_scores(q, prediction_text(answer))
        right = bool(expected) and ((scores["f1"] or 0) >= 0.5 or bool(scores["gold_in_answer"]))
        lenient_right = bool(expected) and (
            (lenient["f1"] or 0) >= 0.5 or bool(lenient["gold_in_answer"])
        )
        cited = [Path(c.source).name for c in answer.citations]
        first = answer.citations[0] if answer.citations else None
        return {
            "id": q.qid,
            "question": q.question,
            "expected": expected,
            "expected_source": q.gold_sources[0] if q.gold_sources else "",
            "answer": answer.text,
            "kind": answer.kind,
            "p_correct": answer.p_correct,
            "verdict": verdict(answer.kind, expected, right),
            "right": right or (not expected and answer.abstained),
            "lenient_right": lenient_right or (not expected and answer.abstained),
            "f1": scores["f1"],
            "support": answer.support_score if not answer.abstained else None,
            "quote": first.quote if first else "",
            "cited_sources": cited,
            "source_hit": (Path(q.gold_sources[0]).name in cited) if q.gold_sources else None,
            "seconds": answer.timings.total_s,
            "error": None,
        }

    return work


def headline(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The run's figures (percentages of all questions; support is a 0-1 mean)."""
    n = len(rows) or 1
    count = lambda pred: 100 * sum(1 for r in rows if pred(r)) / n  # noqa: E731
    hits = [float(r["source_hit"]) for r in rows if r.get("source_hit") is not None]
    f1 = mean([r.get("f1") for r in rows])
    return {
        "right": count(lambda r: r.get("right")),
        "lenient_right": count(lambda r: r.get("lenient_right")),
        "wrong": count(lambda r: r.get("verdict") == "wrong"),
        "tentative": count(lambda r: r.get("kind") == "tentative"),
        "abstained": count(lambda r: r.get("kind") == "abstained"),
        "f1": None if f1 is None else 100 * f1,
        "source_hit": 100 * sum(hits) / len(hits) if hits else None,
        "support": mean([r.get("support") for r in rows]),
    }


def by_category(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """The headline figures per question type (the set's optional type column); {} if untyped."""
    kinds = sorted({str(r.get("category") or "") for r in rows})
    if kinds in ([], [""]):
        return {}
    return {
        k or "(none)": headline([r for r in rows if (r.get("category") or "") == k]) for k in kinds
    }


def run_golden(
    items: list[GoldenItem],
    kb: KnowledgeBase,
    settings: Settings,
    llm: BaseChatModel | None = None,
    mode: Mode = "direct",
    concurrency: int = 2,
    progress: Progress | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Ask every golden question, score it, write the run folder; returns the summary."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    if out_dir is None and in_database(settings):
        with tempfile.TemporaryDirectory(prefix="rag-quality-") as scratch:
            summary = run_golden(
                items, kb, settings, llm, mode, concurrency, progress, Path(scratch)
            )
            from eval.pg_quality import write_run

            write_run(settings, kb.name, stamp, summary, run_rows(scratch))
            return summary
    out_dir = out_dir or runs_dir(settings, kb.name) / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    questions = _questions(items)
    categories = {q.qid: item.category for q, item in zip(questions, items, strict=True)}
    work = golden_worker(kb, settings, mode, llm)
    lock, done = threading.Lock(), [0]

    def counted(q: Question) -> dict[str, Any]:
        try:
            return {**work(q), "category": categories[q.qid]}
        finally:
            with lock:
                done[0] += 1
                if progress:
                    progress(done[0], len(questions))

    if progress:
        progress(0, len(questions))
    execute(questions, counted, out_dir, concurrency, show_progress=False)
    rows = run_rows(out_dir)
    summary = {
        "kb": kb.name,
        "started": stamp,
        "mode": mode,
        "questions": len(rows),
        "errors": sum(1 for r in rows if r.get("error")),
        "headline": headline([r for r in rows if not r.get("error")]),
        "by_category": by_category([r for r in rows if not r.get("error")]),
        "settings": {"top_k": settings.top_k, "llm_preset": preset_for(settings)[0]},
    }
    write_atomic(out_dir / SUMMARY, json.dumps(summary, indent=2))
    return summary


def past_runs(settings: Settings, kb: str) -> list[dict[str, Any]]:
    """Summaries of the KB's finished runs, oldest first, each with its 'id' (for past_run_rows)
    and, when kept in files, its folder as 'dir'."""
    if in_database(settings):
        from eval.pg_quality import read_runs

        return read_runs(settings, kb)
    root = runs_dir(settings, kb)
    out = []
    for path in sorted(root.glob(f"*/{SUMMARY}")) if root.is_dir() else []:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a run being written, or a damaged file: not part of the history
        out.append({**summary, "id": path.parent.name, "dir": str(path.parent)})
    return out


def past_run_rows(settings: Settings, kb: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one of past_runs' runs, wherever it is kept."""
    if in_database(settings):
        from eval.pg_quality import read_run_rows

        return read_run_rows(settings, kb, str(run["id"]))
    return run_rows(run["dir"])


def run_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """A run's rows in golden-set order (they are written in the order they finish)."""
    return sorted(read_rows(Path(run_dir)), key=lambda r: str(r["id"]))
