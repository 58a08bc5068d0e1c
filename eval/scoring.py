"""Per-question scoring: answer EM/F1, claim factuality, citations, retrieval of one row."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from eval.claims import split_claims, strip_markers, words
from eval.datasets import Question
from eval.judge import ClaimJudge, Verdict
from eval.retrieval_metrics import retrieval_scores
from eval.squad_metrics import normalize_answer, score_one
from rag_app.records import Answer

SHORT_ANSWER_WORDS = 4  # up to this many words an answer is a span, judged with its question


def prediction_text(answer: Answer, lenient: bool = False) -> str:
    """What is scored as the answer: "" when the system abstained, markers removed otherwise.

    Strict scoring counts a tentative answer ("probably X, not verified") as abstained; lenient
    scoring counts it as answered.
    """
    if answer.abstained or (answer.kind == "tentative" and not lenient):
        return ""
    return strip_markers(answer.text)


def guess_text(answer: Answer) -> str:
    """The grounded span the gate judged (also when it abstained), for fitting and AUROC."""
    if not answer.abstained:
        return strip_markers(answer.text)
    quoted = re.search(r"the model's guess, '(.*?)', is likely wrong", answer.message)
    return quoted.group(1) if quoted and answer.signals else ""


def _precision(verdicts: Sequence[Verdict]) -> float | None:
    if not verdicts:
        return None
    return sum(v.label == "supported" for v in verdicts) / len(verdicts)


def gold_verdict(question: Question, claim: str, prediction: str, judge: ClaimJudge) -> Verdict:
    """A claim against the gold. A short answer is compared with the gold answers themselves
    (another span answering the same question contradicts them); a longer answer's claims are
    judged against the gold answer sentences."""
    if not question.has_answer:  # nothing answers an unanswerable question
        return Verdict("unsupported", 0.0, reason="question has no answer")
    if len(words(prediction)) <= SHORT_ANSWER_WORDS or not question.evidence:
        f1 = score_one(question.answers, prediction)[1]
        if f1 >= 0.5:
            return Verdict("supported", f1, reason="matches a gold answer")
        return Verdict("contradicted", f1, reason="differs from the gold answers")
    return judge.judge(claim, list(question.evidence))


def factuality(
    question: Question, prediction: str, passages: Sequence[str], judge: ClaimJudge
) -> dict[str, Any]:
    """Each claim judged against the retrieved passages and against the gold answer evidence."""
    claims = split_claims(prediction, question.question, SHORT_ANSWER_WORDS)
    by_passage = [judge.judge(c, passages) for c in claims]
    by_gold = [gold_verdict(question, c, prediction, judge) for c in claims]
    return {
        "claims": [
            {"claim": c, "passages": p.label, "gold": g.label, "support": round(p.score, 4)}
            for c, p, g in zip(claims, by_passage, by_gold, strict=True)
        ],
        "factual_precision": _precision(by_passage),
        "gold_factual_precision": _precision(by_gold),
    }


def citation_scores(question: Question, answer: Answer) -> dict[str, float | None]:
    """Citation precision (share of citations on a gold passage) and recall (a gold one cited)."""
    if not question.has_answer or answer.abstained or not question.gold_sources:
        return {"citation_precision": None, "citation_recall": None}
    gold = set(question.gold_sources)
    cited = [c.source for c in answer.citations]
    if not cited:
        return {"citation_precision": None, "citation_recall": 0.0}
    return {
        "citation_precision": sum(s in gold for s in cited) / len(cited),
        "citation_recall": float(bool(gold & set(cited))),
    }


def answer_scores(question: Question, prediction: str) -> dict[str, float | None]:
    exact, f1 = score_one(question.answers, prediction)
    norm = normalize_answer(prediction)
    contains = any(normalize_answer(a) and normalize_answer(a) in norm for a in question.answers)
    return {
        "exact": exact,
        "f1": f1,
        "gold_in_answer": float(contains) if question.has_answer else None,
    }


def score_result(
    question: Question,
    answer: Answer,
    judge: ClaimJudge,
    ranked_sources: Sequence[str] = (),
    qrels: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """All per-question scores of one answered question (the `scores` field of a result row)."""
    prediction = prediction_text(answer)
    scores: dict[str, Any] = answer_scores(question, prediction)
    lenient_exact, lenient_f1 = score_one(question.answers, prediction_text(answer, lenient=True))
    scores["lenient_exact"], scores["lenient_f1"] = lenient_exact, lenient_f1
    span = guess_text(answer)
    scores["span_f1"] = score_one(question.answers, span)[1] if span else None
    scores.update(factuality(question, prediction, [h.chunk.text for h in answer.hits], judge))
    scores.update(citation_scores(question, answer))
    if qrels and question.has_answer:
        scores.update(retrieval_scores(ranked_sources, qrels))
    dense = [h.dense_score for h in answer.hits if h.dense_score is not None]
    scores["retrieval_confidence"] = max(dense) if dense else 0.0
    scores["support_score"] = answer.support_score
    # The model's own answer confidence, when the answering code records one.
    scores["answer_confidence"] = getattr(answer, "confidence", None)
    return scores
