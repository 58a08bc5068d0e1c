"""`rag eval report RUN`: report.md with metric tables and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.abstention import threshold_curve
from eval.runner import CONFIG, read_rows, write_atomic
from eval.summary import mean, read_segments, summarize
from rag_app.errors import ConfigError

WH_WORDS = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")


def question_type(question: str) -> str:
    """The first wh-word of the question ("other" when there is none)."""
    for word in question.lower().replace("?", " ").split():
        if word in WH_WORDS:
            return "who" if word in ("whom", "whose") else word
    return "other"


def f1_by_type(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if "f1" in r.get("scores", {}):
            groups[question_type(r["question"])].append(float(r["scores"]["f1"]))
    return {k: (100 * sum(v) / len(v), len(v)) for k, v in sorted(groups.items())}


def _plots(rows: Sequence[dict[str, Any]], out_dir: Path) -> list[str]:
    """Write the PNGs that apply to this run; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    made = [_plot_f1(rows, out_dir), _plot_abstention(rows, out_dir), _plot_latency(rows, out_dir)]
    made.append(_plot_reliability(rows, out_dir))
    return [m for m in made if m]


def _plot_reliability(rows: Sequence[dict[str, Any]], out_dir: Path) -> str:
    """The gate's reliability diagram: predicted P(right) against the observed share right."""
    import matplotlib.pyplot as plt

    from eval.gate_metrics import gated, reliability

    bins = reliability(gated(rows))
    if not bins:
        return ""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], "o-", label="gate")
    for b in bins:
        ax.annotate(str(int(b["n"])), (b["predicted"], b["observed"]), fontsize=7)
    ax.set_xlabel("predicted P(right)")
    ax.set_ylabel("observed share right")
    ax.set_title("Answer gate reliability")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, out_dir / "gate_reliability.png")


def _plot_f1(rows: Sequence[dict[str, Any]], out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    by_type = f1_by_type(rows)
    if not by_type:
        return ""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(by_type), [v for v, _ in by_type.values()], color="#4c72b0")
    ax.set_ylabel("F1 (%)")
    ax.set_title("F1 by question type")
    return _save(fig, out_dir / "f1_by_type.png")


def _plot_abstention(rows: Sequence[dict[str, Any]], out_dir: Path) -> str:
    """Calibration: abstain when a score is under a threshold; one curve per score recorded."""
    import matplotlib.pyplot as plt

    if not rows or "abstained" not in rows[0] or not any(r["has_answer"] for r in rows):
        return ""
    fig, ax = plt.subplots(figsize=(5, 4))
    has = [bool(r["has_answer"]) for r in rows]
    for key, label in (
        ("support_score", "answer support"),
        ("retrieval_confidence", "best cosine"),
        ("answer_confidence", "answer confidence"),
    ):
        if all(r["scores"].get(key) is None for r in rows):
            continue
        curve = threshold_curve(has, [float(r["scores"].get(key) or 0.0) for r in rows])
        ax.plot(
            [p["recall"] for p in curve], [p["precision"] for p in curve], "o-", label=label, ms=3
        )
    ax.set_xlabel("recall of unanswerable questions")
    ax.set_ylabel("abstention precision")
    ax.set_title("Abstain when score < threshold")
    ax.legend()
    return _save(fig, out_dir / "abstention_pr.png")


def _plot_latency(rows: Sequence[dict[str, Any]], out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    latency = [float(r["timings"]["total_s"]) for r in rows if r.get("timings")]
    if not latency:
        return ""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(latency, bins=30, color="#55a868")
    ax.set_xlabel("seconds per question")
    ax.set_title("Latency")
    return _save(fig, out_dir / "latency.png")


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path.name


NOT_FRACTIONS = ("claims_per_answer",)  # counts that sit in fraction tables


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{100 * value:.1f}" if pct else f"{value:.2f}"
    return str(value)


def _table(title: str, values: dict[str, Any], pct: bool = False) -> list[str]:
    rows = [
        f"| {k} | {_fmt(v, pct and k not in NOT_FRACTIONS)} |"
        for k, v in values.items()
        if not isinstance(v, dict)
    ]
    return [f"## {title}", "", "| metric | value |", "|---|---|", *rows, ""] if rows else []


def _gate_section(gate: dict[str, Any]) -> list[str]:
    """AUROC of the answer gate and its reliability table (predicted vs observed share right)."""
    if not gate:
        return []
    lines = _table("Answer gate", gate)
    lines += [
        "### Reliability",
        "",
        "| P(right) bin | predicted | observed | n |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {b['bin']:.1f}–{b['bin'] + 0.1:.1f} | {b['predicted']:.2f} | {b['observed']:.2f} "
        f"| {int(b['n'])} |"
        for b in gate.get("reliability", [])
    ]
    return [*lines, ""]


def render(summary: dict[str, Any], rows: Sequence[dict[str, Any]], plots: list[str]) -> str:
    cfg = summary.get("config", {})
    lines = [
        f"# Evaluation report: {cfg.get('pipeline', '?')} / {cfg.get('mode', '?')}",
        "",
        f"Dataset `{cfg.get('dataset', '?')}` ({cfg.get('format', '?')}), "
        f"{summary['questions']} questions (seed {cfg.get('seed')}, limit {cfg.get('limit')}), "
        f"{summary['errors']} errors.",
        "",
    ]
    lines += _table("Answers (SQuAD EM/F1, %)", summary["answer"])
    lines += _table("Abstention (%)", summary.get("abstention", {}), pct=True)
    lines += _table("Factuality (%)", summary["factuality"], pct=True)
    lines += _table("Retrieval (%)", summary["retrieval"], pct=True)
    lines += _table("Cost", summary["cost"])
    lines += _gate_section(summary.get("gate") or {})
    by_type = f1_by_type(rows)
    if by_type:
        lines += ["## F1 by question type", "", "| type | F1 | n |", "|---|---|---|"]
        lines += [f"| {k} | {v:.1f} | {n} |" for k, (v, n) in by_type.items()] + [""]
    lines += [f"![{p}]({p})" for p in plots]
    errors = [r for r in rows if r.get("error")][:5]
    if errors:
        lines += ["", "## First errors", ""] + [
            f"- `{r['id']}`: {r['error'].splitlines()[0]}" for r in errors
        ]
    return "\n".join(lines) + "\n"


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, rows) of a run folder, recomputed from results.jsonl."""
    if not (run_dir / "results.jsonl").is_file():
        raise ConfigError(f"{run_dir}: no results.jsonl; pass the --out folder of `rag eval run`")
    rows = read_rows(run_dir)
    summary = summarize(rows, read_segments(run_dir))
    if (run_dir / CONFIG).is_file():
        summary["config"] = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
    return summary, rows


def write_report(run_dir: Path) -> Path:
    summary, rows = load_run(run_dir)
    ok = [r for r in rows if not r.get("error")]
    plots = _plots(ok, run_dir)
    path = run_dir / "report.md"
    write_atomic(path, render(summary, rows, plots))
    return path


__all__ = ["mean", "question_type", "write_report", "load_run"]
