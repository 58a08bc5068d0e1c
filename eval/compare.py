"""`rag eval compare A B`: metric deltas with paired bootstrap 95% CIs, and flipped questions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.report import load_run

METRICS = (
    "exact",
    "f1",
    "gold_in_answer",
    "factual_precision",
    "citation_precision",
    "citation_recall",
    "recall@5",
    "mrr@10",
    "ndcg@10",
)


def _value(row: dict[str, Any], metric: str) -> float | None:
    if metric == "abstained":
        return float(row["abstained"]) if "abstained" in row else None
    if metric == "latency_s":
        return float(row["timings"]["total_s"]) if row.get("timings") else None
    value = row.get("scores", {}).get(metric)
    return None if value is None else float(value)


def bootstrap_ci(diffs: Sequence[float], samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% CI of the mean paired difference (questions resampled with replacement)."""
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    return means[int(0.025 * samples)], means[min(samples - 1, int(0.975 * samples))]


def paired(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """Rows of the questions both runs answered without error, matched by id."""
    b_by_id = {r["id"]: r for r in rows_b if not r.get("error")}
    return [(a, b_by_id[a["id"]]) for a in rows_a if not a.get("error") and a["id"] in b_by_id]


def deltas(pairs: list[tuple[dict, dict]], samples: int = 2000) -> list[dict[str, Any]]:
    out = []
    for metric in (*METRICS, "abstained", "latency_s"):
        both = [(_value(a, metric), _value(b, metric)) for a, b in pairs]
        kept = [(x, y) for x, y in both if x is not None and y is not None]
        if not kept:
            continue
        diffs = [y - x for x, y in kept]
        lo, hi = bootstrap_ci(diffs, samples)
        out.append(
            {
                "metric": metric,
                "n": len(kept),
                "a": sum(x for x, _ in kept) / len(kept),
                "b": sum(y for _, y in kept) / len(kept),
                "delta": sum(diffs) / len(diffs),
                "ci95": [lo, hi],
                "significant": lo > 0 or hi < 0,
            }
        )
    return out


def flipped(
    pairs: list[tuple[dict, dict]], metric: str = "f1", cut: float = 0.5
) -> dict[str, list]:
    """Questions whose answer went from right to wrong (or back): score crosses `cut`."""
    gained, lost = [], []
    for a, b in pairs:
        x, y = _value(a, metric), _value(b, metric)
        if x is None or y is None:
            continue
        entry = {
            "id": a["id"],
            "question": a["question"],
            "a": a.get("prediction", ""),
            "b": b.get("prediction", ""),
            "gold": a.get("gold", [])[:1],
        }
        if x < cut <= y:
            gained.append(entry)
        elif y < cut <= x:
            lost.append(entry)
    return {"better_in_b": gained, "worse_in_b": lost}


def compare_runs(run_a: Path, run_b: Path, samples: int = 2000) -> dict[str, Any]:
    (_, rows_a), (_, rows_b) = load_run(run_a), load_run(run_b)
    pairs = paired(rows_a, rows_b)
    return {
        "a": str(run_a),
        "b": str(run_b),
        "paired_questions": len(pairs),
        "deltas": deltas(pairs, samples),
        "flipped": flipped(pairs),
    }


def format_compare(result: dict[str, Any], show: int = 10) -> str:
    lines = [
        f"A = {result['a']}",
        f"B = {result['b']}",
        f"{result['paired_questions']} paired questions",
        "",
        "| metric | n | A | B | B-A | 95% CI |",
        "|---|---|---|---|---|---|",
    ]
    for d in result["deltas"]:
        star = " *" if d["significant"] else ""
        lines.append(
            f"| {d['metric']} | {d['n']} | {d['a']:.3f} | {d['b']:.3f} | {d['delta']:+.3f}{star} "
            f"| [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |"
        )
    for key, title in (
        ("better_in_b", "Right in B, wrong in A"),
        ("worse_in_b", "Right in A, wrong in B"),
    ):
        items = result["flipped"][key]
        lines += ["", f"## {title} ({len(items)})", ""]
        lines += [
            f"- {e['question']} gold={e['gold']} A={e['a']!r} B={e['b']!r}" for e in items[:show]
        ]
    return "\n".join(lines)
