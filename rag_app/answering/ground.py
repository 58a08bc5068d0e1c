"""Grounding: tie the model's short answer to a span of a retrieved passage, or decide to abstain.

A tiny model paraphrases and invents; an answer counts only if it occurs (normalised as in the
official SQuAD script) in a passage, or if a passage span matches it closely (token F1 >=
MIN_SPAN_F1); the answer then becomes that exact span, so the user sees the document's words.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

from rag_app.records import ABSTAIN_PHRASE, Hit

MIN_SPAN_F1 = 0.5
# An extracted answer is a short phrase; longer spans from the 135M model were almost always a
# restated question or a copied sentence (measured on SQuAD 2.0 part A dev articles 0-2).
MAX_ANSWER_WORDS = 5
# Share of the answer's content words that merely repeat the question: above this, no answer.
MAX_ECHO = 0.5
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
_TOKEN = re.compile(r"\S+")
# Phrases a small model uses instead of the exact abstention phrase.
_ABSTAIN_HINTS = (
    "i don't know",
    "i do not know",
    "not mentioned",
    "not provided",
    "does not say",
    "doesn't say",
    "not contain",
    "no answer",
    "unanswerable",
    "cannot be determined",
    "not specified",
    "unknown",
)


def normalize(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between two strings (after normalisation)."""
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def is_abstention(answer: str) -> bool:
    low = answer.strip().lower()
    return not low or low == ABSTAIN_PHRASE.lower() or any(h in low for h in _ABSTAIN_HINTS)


@dataclass(frozen=True)
class Span:
    text: str
    hit_index: int  # 0-based index into the hits
    start: int
    end: int
    match: float  # 1.0 = the answer occurs verbatim (normalised)


def _exact(answer: str, hits: list[Hit]) -> Span | None:
    target = normalize(answer)
    if not target:
        return None
    for i, hit in enumerate(hits):
        text = hit.chunk.text
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        size = len(answer.split())
        for length in range(max(1, size - 1), size + 3):
            for j in range(len(tokens) - length + 1):
                start, end = tokens[j][0], tokens[j + length - 1][1]
                if normalize(text[start:end]) == target:
                    return _trimmed(text, start, end, i, 1.0)
    return None


def _trimmed(text: str, start: int, end: int, index: int, match: float) -> Span:
    """Strip punctuation that clings to a span's edges (e.g. a trailing full stop or bracket)."""
    while start < end and text[start] in "\"'([{,;:.":
        start += 1
    while end > start and text[end - 1] in "\"')]},;:.":
        end -= 1
    return Span(text=text[start:end], hit_index=index, start=start, end=end, match=match)


def _closest(answer: str, hits: list[Hit]) -> Span | None:
    size = len(normalize(answer).split())
    best: Span | None = None
    for i, hit in enumerate(hits):
        text = hit.chunk.text
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        for length in range(max(1, size - 2), size + 3):
            for j in range(len(tokens) - length + 1):
                start, end = tokens[j][0], tokens[j + length - 1][1]
                score = token_f1(text[start:end], answer)
                if best is None or score > best.match:
                    best = _trimmed(text, start, end, i, score)
    return best


def ground(answer: str, hits: list[Hit]) -> Span | None:
    """The passage span the answer stands for, or None when no passage supports it."""
    answer = answer.strip()
    if not normalize(answer) or not hits or is_abstention(answer):
        return None
    span = _exact(answer, hits) or _closest(answer, hits)
    if span is None or span.match < MIN_SPAN_F1:
        return None
    return span


def rejection(span: Span, question: str) -> str:
    """Why a grounded span is still no answer ('' when it is one)."""
    from rag_app.answering.verify import lexical_support

    if len(span.text.split()) > MAX_ANSWER_WORDS:
        return f"The model copied a long passage span instead of a short answer: {span.text!r}."
    if lexical_support(span.text, question) > MAX_ECHO:
        return f"The model's answer only repeats the question: {span.text!r}."
    return ""
