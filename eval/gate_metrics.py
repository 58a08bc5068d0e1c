"""Answer-gate metrics: how well P(right) ranks right above wrong answers (AUROC) and how well
it is calibrated (reliability bins), over the rows whose answer was grounded and gated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RIGHT_F1 = 0.5  # an answer counts as right at SQuAD token F1 >= 0.5 (gold_verdict's rule too)
BINS = 10


def gated(rows: Sequence[dict[str, Any]]) -> list[tuple[float, bool]]:
    """(p_correct, right) of each row the gate judged; right = its span scores F1 >= 0.5."""
    out = []
    for row in rows:
        p = row.get("p_correct")
        span = row.get("span")
        if p is None or not span:
            continue
        out.append((float(p), float(row["scores"].get("span_f1") or 0.0) >= RIGHT_F1))
    return out


def auroc(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """Area under the ROC curve (scikit-learn), None when only one class is present."""
    labels = [right for _, right in pairs]
    if len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, [p for p, _ in pairs]))


def reliability(pairs: Sequence[tuple[float, bool]], bins: int = BINS) -> list[dict[str, float]]:
    """Per probability bin: mean predicted P(right), observed share right, count."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(p, r) for p, r in pairs if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if inside:
            out.append(
                {
                    "bin": round(lo, 2),
                    "predicted": sum(p for p, _ in inside) / len(inside),
                    "observed": sum(r for _, r in inside) / len(inside),
                    "n": float(len(inside)),
                }
            )
    return out


def ece(pairs: Sequence[tuple[float, bool]], bins: int = BINS) -> float | None:
    """Expected calibration error: the count-weighted gap between predicted and observed."""
    if not pairs:
        return None
    return sum(
        b["n"] * abs(b["predicted"] - b["observed"]) for b in reliability(pairs, bins)
    ) / len(pairs)


def _right(row: dict[str, Any]) -> bool:
    return bool(row.get("has_answer")) and float(row["scores"].get("f1") or 0.0) >= RIGHT_F1


def kind_precision(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """What the kinds promise, measured: the share of confident answers that are right, the
    share of answerable questions answered confidently and right (coverage), and the share
    answered right when tentative answers count too (lenient coverage)."""
    confident = [r for r in rows if r.get("kind") == "confident"]
    answerable = [r for r in rows if r.get("has_answer")]
    shown = [r for r in answerable if r.get("kind") in ("confident", "tentative")]
    return {
        "confident_precision": sum(map(_right, confident)) / len(confident) if confident else None,
        "coverage": sum(map(_right, confident)) / len(answerable) if answerable else None,
        "lenient_coverage": sum(map(_right, shown)) / len(answerable) if answerable else None,
    }


def gate_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    pairs = gated(rows)
    if not pairs:
        return {}
    kinds = [r.get("kind") for r in rows]
    return {
        "gated_answers": len(pairs),
        "auroc": auroc(pairs),
        "ece": ece(pairs),
        **kind_precision(rows),
        "confident": kinds.count("confident"),
        "tentative": kinds.count("tentative"),
        "abstained": kinds.count("abstained"),
        "reliability": reliability(pairs),
    }
