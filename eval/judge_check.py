"""`rag eval judge-check`: score a claim judge against the labelled set (eval/judge_set.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from eval.judge import ClaimJudge
from eval.judge_set import LabelledClaim


def binary_scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Precision/recall/F1 of flagging a claim as not supported (unsupported or contradicted)."""
    pairs = [(g != "supported", p != "supported") for g, p in zip(gold, predicted, strict=True)]
    tp = sum(1 for g, p in pairs if g and p)
    fp = sum(1 for g, p in pairs if p and not g)
    fn = sum(1 for g, p in pairs if g and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def check(judge: ClaimJudge, items: Sequence[LabelledClaim]) -> dict[str, Any]:
    """Agreement (3 labels), binary "unsupported" P/R/F1, and accuracy per perturbation kind."""
    verdicts = [judge.judge(item.claim, [item.evidence]) for item in items]
    predicted = [v.label for v in verdicts]
    gold = [item.label for item in items]
    binary_agree = [
        (g == "supported") == (p == "supported") for g, p in zip(gold, predicted, strict=True)
    ]
    per_kind: dict[str, list[bool]] = {}
    for item, ok in zip(items, binary_agree, strict=True):
        per_kind.setdefault(item.kind, []).append(ok)
    return {
        "judge": judge.name,
        "items": len(items),
        "gold_labels": dict(Counter(gold)),
        "predicted_labels": dict(Counter(predicted)),
        "unsupported": binary_scores(gold, predicted),
        "agreement_3way": sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(items),
        "agreement_binary": sum(binary_agree) / len(items),
        "judge_errors": sum(v.reason.startswith("judge error") for v in verdicts),
        "binary_accuracy_by_kind": {k: sum(v) / len(v) for k, v in sorted(per_kind.items())},
    }


def format_check(result: dict[str, Any]) -> str:
    """A short Markdown table for the terminal and the issue note."""
    u = result["unsupported"]
    lines = [
        f"judge: {result['judge']} on {result['items']} labelled claims {result['gold_labels']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| unsupported precision | {u['precision']:.3f} |",
        f"| unsupported recall | {u['recall']:.3f} |",
        f"| unsupported F1 | {u['f1']:.3f} |",
        f"| agreement (supported / not) | {result['agreement_binary']:.3f} |",
        f"| agreement (3 labels) | {result['agreement_3way']:.3f} |",
    ]
    lines += [f"| accuracy: {k} | {v:.3f} |" for k, v in result["binary_accuracy_by_kind"].items()]
    return "\n".join(lines)
