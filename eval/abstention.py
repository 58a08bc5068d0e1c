"""Abstention metrics: NoAns accuracy, false abstentions, precision/recall over a threshold."""

from __future__ import annotations

from collections.abc import Sequence


def abstention_scores(has_answer: Sequence[bool], abstained: Sequence[bool]) -> dict[str, float]:
    """Rates over the questions given: abstaining is right exactly when there is no answer."""
    no_ans = [a for h, a in zip(has_answer, abstained, strict=True) if not h]
    has_ans = [a for h, a in zip(has_answer, abstained, strict=True) if h]
    right = sum(1 for h, a in zip(has_answer, abstained, strict=True) if a and not h)
    n_abstained = sum(abstained)
    return {
        "noans_accuracy": sum(no_ans) / len(no_ans) if no_ans else 0.0,
        "false_abstention_rate": sum(has_ans) / len(has_ans) if has_ans else 0.0,
        "abstention_rate": n_abstained / len(abstained) if abstained else 0.0,
        "abstention_precision": right / n_abstained if n_abstained else 0.0,
    }


def threshold_curve(
    has_answer: Sequence[bool], confidence: Sequence[float], steps: int = 21
) -> list[dict[str, float]]:
    """Calibration: for each threshold t, abstain when confidence < t; precision and recall of
    those abstentions at finding the unanswerable questions."""
    if not confidence:
        return []
    lo, hi = min(confidence), max(confidence)
    points = []
    for i in range(steps):
        t = lo + (hi - lo) * i / (steps - 1) if steps > 1 else hi
        abstain = [c < t for c in confidence]
        hits = sum(1 for h, a in zip(has_answer, abstain, strict=True) if a and not h)
        n_abs, n_no = sum(abstain), sum(1 for h in has_answer if not h)
        points.append(
            {
                "threshold": t,
                "precision": hits / n_abs if n_abs else 1.0,
                "recall": hits / n_no if n_no else 0.0,
                "abstained": n_abs / len(abstain),
            }
        )
    return points
