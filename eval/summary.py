"""Run summary: aggregate rows into answer, abstention, factuality, retrieval and cost."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.abstention import abstention_scores
from eval.gate_metrics import gate_summary
from eval.squad_metrics import aggregate

RETRIEVAL_KEYS = ("recall@1", "recall@5", "recall@10", "recall@20", "mrr@10", "ndcg@10")


def mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _scores(rows: Sequence[dict[str, Any]], key: str) -> list[float | None]:
    return [r.get("scores", {}).get(key) for r in rows]


def answer_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows or "exact" not in rows[0].get("scores", {}):
        return {}
    has = {r["id"]: bool(r["has_answer"]) for r in rows}
    exact = {r["id"]: float(r["scores"]["exact"]) for r in rows}
    f1 = {r["id"]: float(r["scores"]["f1"]) for r in rows}
    out: dict[str, Any] = dict(aggregate(exact, f1, has))
    gia = mean(_scores(rows, "gold_in_answer"))
    out["HasAns_gold_in_answer"] = None if gia is None else 100 * gia
    answered = [r for r in rows if r.get("prediction")]
    # precision of answered questions: the share of given answers that are right (F1 >= 0.5)
    out["answered"] = len(answered)
    out["answered_precision"] = (
        100 * sum(float(r["scores"]["f1"]) >= 0.5 for r in answered) / len(answered)
        if answered
        else None
    )
    if "lenient_f1" in rows[0].get("scores", {}):  # tentative answers counted as answers
        lenient = aggregate(
            {r["id"]: float(r["scores"]["lenient_exact"]) for r in rows},
            {r["id"]: float(r["scores"]["lenient_f1"]) for r in rows},
            has,
        )
        out |= {f"lenient_{k}": v for k, v in lenient.items() if k in LENIENT_KEYS}
    return out


LENIENT_KEYS = ("exact", "f1", "HasAns_f1", "NoAns_exact")


def factuality_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    claims = [c for r in rows for c in r.get("scores", {}).get("claims", [])]
    if not claims and "factual_precision" not in (rows[0].get("scores", {}) if rows else {}):
        return {}
    by_passage = Counter(c["passages"] for c in claims)
    by_gold = Counter(c["gold"] for c in claims)
    answered = [r for r in rows if r.get("scores", {}).get("claims")]
    return {
        "factual_precision": mean(_scores(rows, "factual_precision")),  # mean over answers
        "factual_precision_micro": by_passage["supported"] / len(claims) if claims else None,
        "gold_factual_precision": mean(_scores(rows, "gold_factual_precision")),
        "claims_per_answer": len(claims) / len(answered) if answered else 0.0,
        "claim_labels_vs_passages": dict(by_passage),
        "claim_labels_vs_gold": dict(by_gold),
        "citation_precision": mean(_scores(rows, "citation_precision")),
        "citation_recall": mean(_scores(rows, "citation_recall")),
    }


def cost_summary(
    rows: Sequence[dict[str, Any]], segments: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    latency = [float(r["timings"]["total_s"]) for r in rows if r.get("timings")]
    usage = [r["usage"] for r in rows if r.get("usage")]
    seconds = sum(s["seconds"] for s in segments)
    return {
        "latency_p50_s": percentile(latency, 50),
        "latency_p95_s": percentile(latency, 95),
        "completion_tokens_per_answer": mean([u["completion_tokens"] for u in usage]),
        "prompt_tokens_per_answer": mean([u["prompt_tokens"] for u in usage]),
        "questions_per_min": 60 * sum(s["rows"] for s in segments) / seconds if seconds else None,
        **queue_summary(segments),
    }


def queue_summary(segments: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many LLM requests waited for an in-flight slot (client-side backpressure)."""
    queues = [s["llm_queue"] for s in segments if s.get("llm_queue")]
    if not queues:
        return {}
    waited = sum(q["waited"] for q in queues)
    return {
        "llm_requests": sum(q["requests"] for q in queues),
        "llm_requests_waited": waited,
        "llm_wait_s_mean": sum(q["wait_s_total"] for q in queues) / waited if waited else 0.0,
        "llm_wait_s_max": max(q["wait_s_max"] for q in queues),
        "llm_slow_requests": sum(q["slow"] for q in queues),
    }


def summarize(
    rows: Sequence[dict[str, Any]], segments: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """All aggregate metrics of a run (answer metrics in percent, the rest as fractions)."""
    ok = [r for r in rows if not r.get("error")]
    summary: dict[str, Any] = {"questions": len(rows), "errors": len(rows) - len(ok)}
    summary["answer"] = answer_summary(ok)
    if ok and "abstained" in ok[0]:
        summary["abstention"] = abstention_scores(
            [bool(r["has_answer"]) for r in ok], [bool(r["abstained"]) for r in ok]
        )
    summary["factuality"] = factuality_summary(ok)
    summary["retrieval"] = {
        k: mean(_scores(ok, k))
        for k in RETRIEVAL_KEYS
        if any(v is not None for v in _scores(ok, k))
    }
    summary["cost"] = cost_summary(ok, segments)
    summary["gate"] = gate_summary(ok)
    return summary


def read_segments(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "segments.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
