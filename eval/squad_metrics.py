"""Answer metrics: EM and F1 exactly as the official SQuAD 2.0 evaluate-v2.0.py defines them."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Mapping, Sequence

# SEE: https://worksheets.codalab.org/rest/bundles/0x6b567e1cf2e041ec80d7098f031c5c9e/contents/blob/
# (evaluate-v2.0.py). The definitions below replicate it: gold answers with empty text count as
# no-answer, the score of a question is the max over its gold answers.
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def get_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(gold: str, pred: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(pred))


def compute_f1(gold: str, pred: str) -> float:
    gold_toks, pred_toks = get_tokens(gold), get_tokens(pred)
    if not gold_toks or not pred_toks:
        # If either is no-answer, F1 is 1 if they agree, 0 otherwise.
        return float(gold_toks == pred_toks)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def gold_texts(answers: Sequence[str]) -> list[str]:
    """Gold answers whose normalised text is non-empty; [""] means the question has no answer."""
    golds = [a for a in answers if normalize_answer(a)]
    return golds or [""]


def score_one(answers: Sequence[str], prediction: str) -> tuple[float, float]:
    """(exact, f1) of one prediction: the max over the question's gold answers."""
    golds = gold_texts(answers)
    return (
        float(max(compute_exact(g, prediction) for g in golds)),
        max(compute_f1(g, prediction) for g in golds),
    )


def _mean_pct(values: Sequence[float]) -> float:
    return 100.0 * sum(values) / len(values) if values else 0.0


def aggregate(
    exact: Mapping[str, float], f1: Mapping[str, float], has_ans: Mapping[str, bool]
) -> dict[str, float | int]:
    """The official output dict (percentages): exact, f1, total and the HasAns/NoAns splits."""
    qids = list(exact)
    out: dict[str, float | int] = {
        "exact": _mean_pct([exact[q] for q in qids]),
        "f1": _mean_pct([f1[q] for q in qids]),
        "total": len(qids),
    }
    for name, want in (("HasAns", True), ("NoAns", False)):
        part = [q for q in qids if has_ans[q] is want]
        if part:
            out[f"{name}_exact"] = _mean_pct([exact[q] for q in part])
            out[f"{name}_f1"] = _mean_pct([f1[q] for q in part])
            out[f"{name}_total"] = len(part)
    return out


def score_predictions(
    gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> dict[str, float | int]:
    """Score {qid: answer} against {qid: gold answer texts}; a missing prediction counts as ""."""
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    has_ans: dict[str, bool] = {}
    for qid, answers in gold.items():
        pred = predictions.get(qid, "")
        exact[qid], f1[qid] = score_one(answers, pred)
        has_ans[qid] = bool(answers)  # official: a question has an answer if its list is non-empty
    return aggregate(exact, f1, has_ans)
