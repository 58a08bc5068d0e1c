"""Answer gate: P(the grounded span is right) from what is known at answer time, then the kind.

A small model's token confidence barely tells answerable from unanswerable questions (SQuAD 2.0:
Qwen-0.5B answered 92% of the unanswerable ones, and its confidence separated them little), so
the gate also reads retrieval scores and ranks, whether the passage sentence really covers the
question's words and names, the question's expected answer type against the span's, and the
citation support. A logistic regression (scikit-learn, fitted per model preset by
bench/fit_gate.py with cross-validation) maps these signals to a probability; it ships as plain
JSON coefficients (rag_app/answering/gates/<preset>.json), never a pickle.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_app.answering.ground import Span, normalize
from rag_app.answering.verify import lexical_support
from rag_app.errors import ConfigError
from rag_app.records import AnswerKind, Hit
from rag_app.serving.presets import preset_for
from rag_app.words import STOPWORDS, WORD, content_words

if TYPE_CHECKING:
    from rag_app.settings import Settings

GATES_DIR = Path(__file__).resolve().parent / "gates"
MISSING_RANK = 50  # a retriever that did not return the span's passage at all
_NUMBER_TEXT = """one two three four five six seven eight nine ten eleven twelve hundred thousand
million billion dozen half first second third"""
_NUMBER_WORDS = frozenset(_NUMBER_TEXT.split())
_MONTH_TEXT = """january february march april may june july august september october november
december"""
_MONTHS = frozenset(_MONTH_TEXT.split())
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})s?\b")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n\s*\n")


@dataclass(frozen=True)
class Evidence:
    """What the answering step knows about one grounded span."""

    question: str
    span: Span
    hits: list[Hit]
    token_logprobs: list[float]  # of the answer's tokens, as generated
    abstain_logprob: float | None  # of starting the answer with the abstention phrase instead
    support: float
    choices: int  # candidate spans the model chose from (0 = free text)


def question_type(question: str) -> str:
    """The answer type a question asks for: number, date, person, place or other."""
    q = " ".join(WORD.findall(question.lower()))
    if re.search(r"\bhow (many|much|long|old|far|big|large|tall|high|often)\b", q) or re.search(
        r"\bwhat (percentage|percent|number|amount)\b", q
    ):
        return "number"
    if re.search(r"\bwhen\b|\b(what|which) (year|date|century|decade|month|day|time)\b", q):
        return "date"
    if re.search(r"\bwho\b|\bwhom\b|\bwhose\b", q):
        return "person"
    if re.search(r"\bwhere\b|\b(what|which) (country|city|state|place|region|town)\b", q):
        return "place"
    return "other"


def span_type(span: str) -> str:
    """What a span looks like: date, number, name (capitalised words) or other."""
    words = WORD.findall(span)
    lower = {w.lower() for w in words}
    if _YEAR.search(span) or lower & _MONTHS:
        return "date"
    if any(ch.isdigit() for ch in span) or lower & _NUMBER_WORDS:
        return "number"
    content = [w for w in words if w.lower() not in STOPWORDS]
    if content and all(w[0].isupper() for w in content):
        return "name"
    return "other"


_COMPATIBLE = {
    "number": {"number"},
    "date": {"date", "number"},
    "person": {"name"},
    "place": {"name"},
}


def type_agreement(question: str, span: str) -> float:
    """+1 when the span has the type the question asks for, -1 when not, 0 when unknown."""
    wanted = question_type(question)
    if wanted == "other":
        return 0.0
    return 1.0 if span_type(span) in _COMPATIBLE[wanted] else -1.0


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Character offsets of the sentence of `text` that holds text[start:end]."""
    left = 0
    for match in _SENTENCE_END.finditer(text, 0, start):
        left = match.end()
    right = _SENTENCE_END.search(text, end)
    return left, (right.start() + 1 if right else len(text))


def _names(question: str) -> list[str]:
    """The question's names and numbers (capitalised words after the first, digits)."""
    words = WORD.findall(question)
    return [
        w.lower()
        for i, w in enumerate(words)
        if (i > 0 and w[0].isupper() and w.lower() not in STOPWORDS) or w.isdigit()
    ]


def signals(ev: Evidence) -> dict[str, float]:
    """The gate's inputs, all plain floats (also stored on the Answer, for fitting and review)."""
    hit = ev.hits[ev.span.hit_index]
    text = hit.chunk.text
    s0, s1 = sentence_around(text, ev.span.start, ev.span.end)
    sentence = text[s0:s1]
    dense = sorted((h.dense_score or 0.0 for h in ev.hits), reverse=True)
    names = _names(ev.question)
    # A passage under the heading "Harrow Point Lighthouse > Construction" is about the
    # lighthouse even when its text never names it.
    passage_words = {w.lower() for w in WORD.findall(" ".join([*hit.chunk.headings, text]))}
    logps = ev.token_logprobs or [0.0]
    return {
        "logp_mean": sum(logps) / len(logps),
        "logp_min": min(logps),
        "logp_first": logps[0],
        # how close the model came to abstaining; -20 (never) when the server did not say
        "logp_abstain": ev.abstain_logprob if ev.abstain_logprob is not None else -20.0,
        "dense_best": dense[0] if dense else 0.0,
        "dense_margin": dense[0] - dense[1] if len(dense) > 1 else 0.0,
        "dense_span": hit.dense_score or 0.0,
        "span_hit_rank": float(ev.span.hit_index),
        "keyword_rank": float(hit.keyword_rank if hit.keyword_rank is not None else MISSING_RANK),
        "dense_rank": float(hit.dense_rank if hit.dense_rank is not None else MISSING_RANK),
        "q_in_sentence": lexical_support(ev.question, sentence),
        "q_in_passage": lexical_support(ev.question, text),
        "names_missing": (sum(n not in passage_words for n in names) / len(names))
        if names
        else 0.0,
        "type_agreement": type_agreement(ev.question, ev.span.text),
        "echo": lexical_support(ev.span.text, ev.question),
        "span_words": float(len(normalize(ev.span.text).split())),
        "span_match": ev.span.match,
        "support": ev.support,
        "log_choices": math.log1p(ev.choices),
        "span_content_words": float(len(content_words(ev.span.text))),
    }


@dataclass(frozen=True)
class GateModel:
    """Standardised logistic regression over named signals, with its two thresholds."""

    name: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    answer_at: float  # p >= this: a confident answer
    tentative_at: float  # p >= this (and below answer_at): a tentative answer
    info: dict[str, Any]

    @property
    def never_confident(self) -> bool:
        """Fitting found no threshold whose confident answers kept the promised precision."""
        return self.answer_at >= 1.0

    def p_correct(self, values: dict[str, float]) -> float:
        z = self.intercept
        for name, mu, sd, w in zip(self.features, self.mean, self.scale, self.coef, strict=True):
            z += w * (values.get(name, mu) - mu) / (sd or 1.0)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def read_gate(path: Path) -> GateModel:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return GateModel(
            name=str(data["name"]),
            features=list(data["features"]),
            mean=[float(v) for v in data["mean"]],
            scale=[float(v) for v in data["scale"]],
            coef=[float(v) for v in data["coef"]],
            intercept=float(data["intercept"]),
            answer_at=float(data["answer_at"]),
            tentative_at=float(data["tentative_at"]),
            info=dict(data.get("info", {})),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a valid answer-gate file ({exc}); refit it with bench/fit_gate.py"
        ) from exc


def gate_name(model: str, preset: str) -> str:
    """Whose gate applies: the preset whose model is answering (served names start with the
    preset's name, e.g. qwen2.5-coder-0.5b-instruct); none for another model (a gate fitted on
    one model says little about another); llm_preset when the model's name is unknown."""
    served = model.lower()
    for path in sorted(GATES_DIR.glob("*.json")):
        if served.startswith(path.stem):
            return path.stem
    return preset if not served else ""


@lru_cache(maxsize=8)
def load_gate(spec: str, preset: str) -> GateModel | None:
    """The gate named by the answer_gate setting: auto = the preset's, a JSON path, or off."""
    if spec == "off":
        return None
    if spec == "auto":
        path = GATES_DIR / f"{preset}.json"
        return read_gate(path) if preset and path.is_file() else None
    return read_gate(Path(spec).expanduser())


def model_gate(settings: Settings, model: str = "") -> GateModel | None:
    """The gate that judges `model`'s answers under these settings (None: no fitted gate)."""
    preset, _ = preset_for(settings)
    return load_gate(settings.answer_gate, gate_name(model, preset))


def decide_kind(p: float, answer_at: float, tentative_at: float) -> AnswerKind:
    if p >= answer_at:
        return "confident"
    if p >= tentative_at:
        return "tentative"
    return "abstained"
