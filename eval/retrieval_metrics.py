"""Retrieval metrics: recall@k, MRR@10 and nDCG@10 of a ranked list of source ids against qrels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def dedupe(ranked: Sequence[str]) -> list[str]:
    """Source ids in first-seen order: chunks of one document count once (as in BEIR)."""
    seen: set[str] = set()
    out = []
    for source in ranked:
        if source not in seen:
            seen.add(source)
            out.append(source)
    return out


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    rel = {d for d, g in relevant.items() if g > 0}
    if not rel:
        return 0.0
    return len(rel & set(dedupe(ranked)[:k])) / len(rel)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document in the top k, else 0."""
    for rank, doc in enumerate(dedupe(ranked)[:k], 1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG with linear gains (as trec_eval and BEIR compute it): DCG / ideal DCG."""
    dcg = sum(
        relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(dedupe(ranked)[:k], 1)
    )
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0


def retrieval_scores(
    ranked: Sequence[str], relevant: Mapping[str, int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    scores = {f"recall@{k}": recall_at_k(ranked, relevant, k) for k in ks}
    scores["mrr@10"] = mrr_at_k(ranked, relevant, 10)
    scores["ndcg@10"] = ndcg_at_k(ranked, relevant, 10)
    return scores
