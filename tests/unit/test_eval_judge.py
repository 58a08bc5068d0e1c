"""The offline claim judge on crafted supported, unsupported and contradicted claims."""

from __future__ import annotations

import pytest

from eval.claims import entities, numbers, split_claims, strip_markers
from eval.judge import OfflineJudge
from tests.fakes import HashingEmbeddings

PASSAGE = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
    "a region in France. They were descended from Norse raiders from Denmark, Iceland and Norway "
    "who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia. "
    "The treaty was signed on 12 March 911 and the duchy had 3,000 knights."
)


@pytest.fixture(scope="module")
def judge() -> OfflineJudge:
    return OfflineJudge(HashingEmbeddings(dim=256))


@pytest.mark.parametrize(
    "claim",
    [
        "The Normans gave their name to Normandy in the 10th and 11th centuries.",
        "Their leader Rollo swore fealty to King Charles III.",
        "The treaty was signed in 911.",
        "The duchy had 3000 knights.",  # "3,000" and "3000" are the same number
    ],
)
def test_supported(judge: OfflineJudge, claim: str) -> None:
    assert judge.judge(claim, [PASSAGE]).label == "supported"


@pytest.mark.parametrize(
    ("claim", "why"),
    [
        ("The Normans gave their name to Normandy in the 12th and 13th centuries.", "number"),
        ("The treaty was signed on 12 March 912.", "number"),
        ("The treaty was signed on 12 April 911.", "number"),  # a date: month swapped
        ("The Normans did not give their name to Normandy.", "negation"),
        ("Their leader Harold swore fealty to King Charles III.", "entity"),
        ("Normandy is a region in Germany.", "entity"),
    ],
)
def test_contradicted(judge: OfflineJudge, claim: str, why: str) -> None:
    verdict = judge.judge(claim, [PASSAGE])
    assert verdict.label == "contradicted", verdict
    assert why in verdict.reason


@pytest.mark.parametrize(
    "claim",
    [
        "Pizza is a popular food in Naples.",
        "The Normans built many castles in England.",  # on topic, but England is never mentioned
    ],
)
def test_unsupported(judge: OfflineJudge, claim: str) -> None:
    assert judge.judge(claim, [PASSAGE]).label == "unsupported"


def test_no_evidence_is_unsupported(judge: OfflineJudge) -> None:
    assert judge.judge("Rollo led the Normans.", []).label == "unsupported"


def test_claim_splitting() -> None:
    assert split_claims(
        "Rollo led them [1]; they swore fealty to Charles III [2]. It was 911."
    ) == [
        "Rollo led them",
        "they swore fealty to Charles III.",
        "It was 911.",
    ]
    # A bare span is judged together with its question.
    assert split_claims("France", "In what country is Normandy?") == [
        "In what country is Normandy: France"
    ]
    assert split_claims("") == []
    assert strip_markers("Paris [2] [3, 4]") == "Paris"


def test_features() -> None:
    assert numbers("In the tenth century, 1,200 men on 3 May") == {"10", "1200", "3", "may"}
    assert entities("The Normans met Rollo in Rouen.") == {"norman", "rollo", "rouen"}
    assert entities("Several ships sailed.") == set()  # sentence-initial words are not names


def test_gold_verdicts(judge: OfflineJudge) -> None:
    from eval.datasets import Question
    from eval.scoring import factuality

    q = Question(
        "q",
        "What is the largest city in California?",
        ("Los Angeles",),
        evidence=("Los Angeles is the largest city in California; San Diego is second.",),
    )
    passages = [q.evidence[0]]
    right = factuality(q, "Los Angeles", passages, judge)
    wrong = factuality(q, "San Diego", passages, judge)
    assert right["claims"][0]["gold"] == "supported" and right["gold_factual_precision"] == 1.0
    # A lexical judge finds "San Diego" in the passage, but the gold answer says otherwise.
    assert wrong["claims"][0]["gold"] == "contradicted" and wrong["gold_factual_precision"] == 0.0
    none = Question("n", "Who founded Atlantis?")
    assert factuality(none, "Rollo", passages, judge)["claims"][0]["gold"] == "unsupported"
