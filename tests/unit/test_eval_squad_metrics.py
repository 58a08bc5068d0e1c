"""Known-answer test: our EM/F1 reproduce the official evaluate-v2.0.py numbers on SQuAD part A."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import load_squad2
from eval.squad_metrics import compute_f1, normalize_answer, score_one, score_predictions
from tests.conftest import SHARED_DATA

SQUAD = SHARED_DATA / "squad2"
SYSTEMS = ["bert-large-single", "bidaf-selfattn-elmo-single", "nlnet-single"]


@pytest.fixture(scope="module")
def gold() -> dict[str, tuple[str, ...]]:
    dataset = load_squad2(SQUAD / "dev-v2.0.part-a.json")
    return {q.qid: q.answers for q in dataset.questions}


@pytest.mark.parametrize("system", SYSTEMS)
def test_reproduces_official_scores(gold: dict[str, tuple[str, ...]], system: str) -> None:
    expected = json.loads((SQUAD / "predictions" / "expected-scores-part-a.json").read_text())[
        system
    ]
    predictions = json.loads((SQUAD / "predictions" / f"{system}.json").read_text())
    got = score_predictions(gold, predictions)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=0.01), key


def test_normalisation_follows_official_rules() -> None:
    assert normalize_answer("The  Normans!") == "normans"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Thea") == "thea"  # articles only as whole words


def test_f1_and_no_answer_cases() -> None:
    assert compute_f1("10th and 11th centuries", "in the 10th and 11th centuries") == pytest.approx(
        2 * (4 / 5) * 1.0 / (4 / 5 + 1.0)
    )
    assert score_one((), "") == (1.0, 1.0)  # no-answer question, abstained
    assert score_one((), "France") == (0.0, 0.0)
    assert score_one(("France", "the French"), "french") == (1.0, 1.0)  # max over gold answers


def test_score_command_prints_official_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rag_app.cli import app

    preds = SQUAD / "predictions" / "nlnet-single.json"
    dataset = SQUAD / "dev-v2.0.part-a.json"
    result = CliRunner().invoke(
        app, ["eval", "score", "--dataset", str(dataset), "--predictions", str(preds)]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) >= {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "NoAns_exact"}
    assert out["NoAns_exact"] == pytest.approx(82.2586, abs=0.01)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = CliRunner().invoke(
        app, ["eval", "score", "--dataset", str(dataset), "--predictions", str(bad)]
    )
    assert result.exit_code != 0
