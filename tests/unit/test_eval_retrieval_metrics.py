"""Retrieval metrics against hand-computed examples."""

from __future__ import annotations

import math

import pytest

from eval.retrieval_metrics import mrr_at_k, ndcg_at_k, recall_at_k, retrieval_scores


def test_recall_counts_relevant_found_in_top_k() -> None:
    qrels = {"a": 1, "b": 1}
    assert recall_at_k(["x", "a", "y", "b"], qrels, 2) == 0.5
    assert recall_at_k(["x", "a", "y", "b"], qrels, 4) == 1.0
    assert recall_at_k(["x"], {}, 4) == 0.0


def test_mrr_is_reciprocal_rank_of_first_relevant() -> None:
    assert mrr_at_k(["x", "y", "a"], {"a": 1}) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 3 + ["a"], {"a": 1}) == 0.5  # duplicate chunks of one doc count once
    assert mrr_at_k([f"d{i}" for i in range(10)] + ["a"], {"a": 1}) == 0.0  # beyond rank 10


def test_ndcg_hand_computed() -> None:
    # Relevant at ranks 2 and 3 of two relevant docs: DCG = 1/log2(3) + 1/log2(4).
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(["x", "a", "b"], {"a": 1, "b": 1}) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}) == pytest.approx(1.0)
    # Graded: the grade-2 doc first is ideal.
    graded = {"a": 2, "b": 1}
    assert ndcg_at_k(["b", "a"], graded) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    )


def test_retrieval_scores_names() -> None:
    scores = retrieval_scores(["a"], {"a": 1})
    assert scores == {
        "recall@1": 1.0,
        "recall@5": 1.0,
        "recall@10": 1.0,
        "mrr@10": 1.0,
        "ndcg@10": 1.0,
    }
