"""The gate's kinds keep their meanings: thresholds by precision, calibration, the yes/no check."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.fit_gate import (
    calibrated,
    confident_threshold,
    kind_scores,
    logit,
    platt,
    tentative_threshold,
)
from eval.gate_metrics import ece, kind_precision
from rag_app.answering.check import check_answer, check_prompt, yes_log_odds
from tests.fakes import LogprobChat


def test_confident_threshold_is_the_lowest_whose_confident_set_is_precise_enough() -> None:
    # 20 answers above 0.8 all right, 10 between 0.6 and 0.8 half right, then mostly wrong
    p = np.array([0.81 + i * 0.005 for i in range(20)] + [0.61 + i * 0.015 for i in range(10)])
    y = np.array([1] * 20 + [1, 0] * 5)
    t = confident_threshold(p, y, 0.9)
    chosen = p >= t
    assert y[chosen].mean() >= 0.9
    assert t <= 0.81  # all 20 right ones are confident
    assert confident_threshold(p, y, 0.99) >= 0.81


def test_one_early_wrong_answer_does_not_veto_lower_thresholds() -> None:
    p = np.linspace(0.99, 0.5, 50)
    y = np.array([1, 1, 0] + [1] * 37 + [0] * 10)  # a wrong answer third from the top
    t = confident_threshold(p, y, 0.9)
    assert y[p >= t].mean() >= 0.9
    assert (p >= t).sum() >= 40  # the 37 right answers below it stay confident


def test_confident_threshold_is_one_when_no_threshold_is_precise() -> None:
    p = np.linspace(0.1, 0.9, 40)
    y = np.array([0, 1] * 20)
    assert confident_threshold(p, y, 0.9) == 1.0


def test_platt_fixes_an_under_confident_score() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=4000) < truth).astype(int)
    squashed = 1 / (1 + np.exp(-0.4 * logit(truth)))  # predicted much nearer 0.5 than it is
    before = ece(list(zip(squashed, y.astype(bool), strict=True)))
    after = ece(list(zip(calibrated(squashed, platt(squashed, y)), y.astype(bool), strict=True)))
    assert before is not None and after is not None
    assert after < 0.03 < before


def _row(qid: str, has: bool, f1: float, kind: str) -> dict[str, Any]:
    return {"id": qid, "has_answer": has, "kind": kind, "scores": {"f1": f1, "span_f1": f1}}


def test_kind_precision_counts_unanswerables_answered_as_wrong() -> None:
    rows = [
        _row("a", True, 1.0, "confident"),
        _row("b", True, 0.0, "confident"),
        _row("c", False, 0.0, "confident"),
        _row("d", True, 1.0, "tentative"),
        _row("e", True, 0.0, "abstained"),
    ]
    got = kind_precision(rows)
    assert got["confident_precision"] == 1 / 3
    assert got["coverage"] == 1 / 4
    assert got["lenient_coverage"] == 2 / 4


def test_fit_kind_scores_match_the_answer_rule() -> None:
    rows = [_row("a", True, 1.0, ""), _row("b", False, 0.0, ""), _row("c", True, 0.2, "")]
    got = kind_scores(rows, {"a": 0.95, "b": 0.91, "c": 0.5}, 0.9)
    assert got == {"confident": 2, "confident_precision": 0.5, "coverage": 0.5}


def test_tentative_threshold_answers_where_answering_beats_withholding() -> None:
    # Above 0.5 the spans are mostly right; below it mostly wrong or answering unanswerables.
    rows = [_row(f"r{i}", True, 1.0, "") for i in range(6)] + [_row("w", True, 0.0, "")]
    rows += [_row(f"u{i}", False, 0.0, "") for i in range(4)] + [_row("low", True, 1.0, "")]
    p = {f"r{i}": 0.55 + 0.03 * i for i in range(6)} | {"w": 0.6, "low": 0.2}
    p |= {f"u{i}": 0.25 + 0.05 * i for i in range(4)}
    t = tentative_threshold(rows, p, 0.9)
    assert 0.4 < t <= 0.55  # all six right spans in, every unanswerable out
    assert tentative_threshold(rows, p, 0.5) == 0.5  # never above answer_at's own band


def test_yes_log_odds_reads_either_case_and_clips() -> None:
    assert yes_log_odds({"yes": -0.1, "no": -2.4}) == 2.4 - 0.1
    assert yes_log_odds({"Yes": -3.0, " no": -0.05}) == -2.95
    assert yes_log_odds({"yes": -0.01}) == 15.0  # "no" masked away: as sure as it gets
    assert yes_log_odds({"maybe": -0.1}) is None


def test_check_answer_asks_one_constrained_token_and_returns_log_odds() -> None:
    chat = LogprobChat(top={"no": -0.2, "yes": -1.8}, seen=[])
    odds = check_answer(chat, "Who built it?", "It was built in 1823 by Josiah Crane.", "1823")
    assert odds is not None and abs(odds - (-1.6)) < 1e-9
    call = chat.seen[0]
    assert call["max_tokens"] == 1 and call["logprobs"] is True
    assert call["extra_body"]["structured_outputs"]["choice"] == ["yes", "no"]
    assert "Josiah Crane" in call["prompt"] and '"1823"' in call["prompt"]


def test_check_prompt_keeps_long_sentences_short() -> None:
    prompt = check_prompt("q?", "word " * 1000, "x")
    assert len(prompt) < 1500


def test_check_prompt_names_the_passage_section_when_it_has_one() -> None:
    # "It is 38 metres tall" only answers a question about the lighthouse under its heading.
    sentence = "It is 38 metres tall."
    with_section = check_prompt("How tall is it?", sentence, "38 metres", "Lighthouse")
    assert f"Section: Lighthouse\nPassage: {sentence}" in with_section
    assert "Section" not in check_prompt("How tall is it?", sentence, "38 metres")
