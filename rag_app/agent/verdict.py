"""Agent verdict: the final answer's kind (confident, tentative, abstained) and P(right).

A span of an observed passage is judged by the answer gate, as in direct mode
(rag_app/answering/gate.py). Anything else (a calculator result, yes/no, an option of the
question, a derived value) is outside what the gate was fitted on and gets the conservative
rule of `unmeasured_p`: never confident. An answer of the wrong form (rag_app/answering/form.py) is
never confident either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag_app.answering.gate import Evidence, decide_kind, model_gate, signals
from rag_app.answering.ground import Span
from rag_app.records import AnswerKind, Hit

if TYPE_CHECKING:
    from rag_app.settings import Settings

# The agent's structured-output calls return no token log-probabilities, and its passages carry
# only the fused score of the search that found them (no dense score or per-retriever rank).
# These signals are left out, so the gate's logistic model uses their fitted means (neutral)
# instead of reading a missing value as "very unsure" or "very sure".
UNKNOWN_TO_AGENT = (
    "logp_mean",
    "logp_min",
    "logp_first",
    "logp_abstain",
    "dense_best",
    "dense_margin",
    "dense_span",
    "dense_rank",
    "keyword_rank",
    "span_hit_rank",  # the order passages were first seen, not a retrieval rank
    "log_choices",  # the agent writes free text, direct mode picks among candidate spans
    "widened",
)
# Conservative rule for answers no gate was fitted on: nothing has measured how often they are
# right, so p = UNMEASURED_P x the share of the facts the answer rests on that cited passages
# quote (both inputs of a difference, both years of a comparison, the question's words for a
# yes/no). At most 0.5 ("as likely right as not"), and such an answer is at most tentative.
UNMEASURED_P = 0.5
# A span of the wrong form ("412" to "how many metres longer"): the gate judged the span, not
# whether it answers this kind of question, so its estimate is halved, and never confident.
WRONG_FORM_FACTOR = 0.5


@dataclass(frozen=True)
class Verdict:
    kind: AnswerKind
    p_correct: float
    signals: dict[str, float] = field(default_factory=dict)


def unmeasured_p(share: float) -> float:
    return round(UNMEASURED_P * max(0.0, min(1.0, share)), 4)


def unmeasured(share: float, form_ok: bool) -> Verdict:
    """A non-span answer: tentative when its form is right and some fact is quoted, else not."""
    p = unmeasured_p(share)
    return Verdict("tentative" if form_ok and p > 0 else "abstained", p)


def span_verdict(
    question: str,
    span: Span,
    hits: list[Hit],
    support: float,
    settings: Settings,
    model: str,
    form_ok: bool,
) -> Verdict:
    """A passage span: the gate's kind and p (capped at tentative when the form is wrong)."""
    gate = model_gate(settings, model)
    seen = signals(Evidence(question, span, hits, [], None, support, 0))
    known = {k: v for k, v in seen.items() if k not in UNKNOWN_TO_AGENT}
    if gate is None:
        # No gate fitted for this model (or answer_gate=off): the conservative rule, except
        # that answer_gate=off means "every grounded span is confident", as in direct mode.
        share = 1.0 if form_ok else WRONG_FORM_FACTOR
        kind: AnswerKind = "confident" if settings.answer_gate == "off" and form_ok else "tentative"
        return Verdict(kind, unmeasured_p(share), known)
    p = gate.p_correct(known)
    answer_at = settings.gate_answer_at if settings.gate_answer_at is not None else gate.answer_at
    tentative_at = (
        settings.gate_tentative_at if settings.gate_tentative_at is not None else gate.tentative_at
    )
    if not form_ok:
        p *= WRONG_FORM_FACTOR
    kind = decide_kind(p, answer_at, min(tentative_at, answer_at))
    # Without the token log-probabilities (its strongest signal, near-abstention) the gate
    # cannot tell a right span from a wrong one well enough to withhold it: a grounded span it
    # doubts is shown as tentative, with its quote and p, rather than dropped.
    if kind == "abstained" or (kind == "confident" and not form_ok):
        kind = "tentative"
    return Verdict(kind, round(p, 4), known)
