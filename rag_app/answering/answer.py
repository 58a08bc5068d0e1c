"""Answering: question -> (condense) -> retrieve -> prompt + LLM -> ground -> verify -> Answer."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag_app.answering.check import check_answer
from rag_app.answering.form import span_form
from rag_app.answering.gate import (
    Evidence,
    GateModel,
    decide_kind,
    model_gate,
    sentence_around,
    signals,
)
from rag_app.answering.generate import PROMPTS, Generation, focus, render_qa, stream_answer
from rag_app.answering.ground import Span, ground, is_abstention, rejection
from rag_app.answering.history import History, condense
from rag_app.answering.retrieve import retrieve
from rag_app.answering.spans import candidate_spans
from rag_app.answering.verify import markers_in, strip_markers, verify
from rag_app.records import (
    ABSTAIN_PHRASE,
    DRAFT_RESTART,
    Answer,
    AnswerKind,
    Citation,
    Hit,
    Mode,
    Timings,
    Usage,
)
from rag_app.serving.presets import context_sentences

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase
    from rag_app.settings import Settings

RELATED = 3
WIDER = 2  # extra sentences of focus for the second try
FALLBACK_TENTATIVE_BAND = 0.1


@dataclass
class _Run:
    """Everything known about one question before the answer is decided."""

    question: str
    standalone: str
    mode: Mode
    prompt_name: str
    hits: list[Hit]
    started: float
    retrieval_s: float
    usage: Usage


def best_dense(hits: list[Hit]) -> float:
    scores = [h.dense_score for h in hits if h.dense_score is not None]
    return max(scores) if scores else 0.0


def _abstain(run: _Run, message: str = "", gen: Generation | None = None) -> Answer:
    return Answer(
        question=run.question,
        standalone_question=run.standalone,
        text=ABSTAIN_PHRASE,
        abstained=True,
        mode=run.mode,
        prompt_name=run.prompt_name,
        reasoning=gen.reasoning if gen else "",
        confidence=gen.confidence if gen else None,
        hits=run.hits,
        related=run.hits[:RELATED],
        message=message,
        usage=run.usage + (gen.usage if gen else Usage()),
        timings=_timings(run, gen),
    )


def _timings(run: _Run, gen: Generation | None) -> Timings:
    return Timings(
        retrieval_s=round(run.retrieval_s, 4),
        first_token_s=round(gen.first_token_s, 4) if gen and gen.first_token_s else None,
        total_s=round(time.perf_counter() - run.started, 4),
    )


def _cited_text(gen: Generation, span: Span, mode: Mode) -> str:
    """The span plus the marker to verify: the model's (cited mode) or the span's passage."""
    given = markers_in(gen.answer) if mode == "cited" else []
    return f"{span.text} [{given[0] if given else span.hit_index + 1}]"


def decide(
    run: _Run,
    gen: Generation,
    kb: KnowledgeBase,
    settings: Settings,
    choices: int = 0,
    widened: bool = False,
    model: str = "",
    llm: BaseChatModel | None = None,
) -> Answer:
    """Ground and verify the model's answer, then let the gate say confident, tentative or not."""
    if is_abstention(strip_markers(gen.answer)):
        return _abstain(run, gen=gen)
    span = ground(strip_markers(gen.answer), run.hits)
    if span is None:
        return _abstain(run, "The model's answer is not in the retrieved passages.", gen)
    form, form_why = span_form(run.standalone, span.text)
    why = rejection(span, run.standalone) or (form_why if form == "wrong" else "")
    if why:
        return _abstain(run, why, gen)
    checks, citations, support = verify(
        _cited_text(gen, span, run.mode), run.hits, kb.embeddings, settings.support_threshold
    )
    evidence = Evidence(
        run.standalone, span, run.hits, gen.logprobs, gen.abstain_logprob, support, choices
    )
    seen = signals(evidence) | {"widened": float(widened)}
    if llm is not None and settings.check_answers and gen.logprobs:
        odds = checked(llm, run.standalone, span, run.hits)
        if odds is not None:
            seen["check_yes"] = odds
    gate = model_gate(settings, model)
    if gate is not None and not gen.logprobs and any(f.startswith("logp") for f in gate.features):
        gate = None  # fitted on token log-probabilities this endpoint did not return
    kind, p = judge(seen, gen, settings, gate)
    if form == "unsure" and kind == "confident":
        kind = "tentative"  # the gate scores the span, not whether a span can answer this
    if kind == "abstained":
        return _abstain(
            run,
            f"Not sure enough to answer: the model's guess, {span.text!r}, is likely wrong "
            f"(estimated {p or 0:.0%} right).",
            gen,
        ).model_copy(update={"p_correct": p, "signals": seen})
    unsure_form = form_why if form == "unsure" else ""
    tentative_notes = [TENTATIVE_NOTE, unsure_form, never_confident_note(gate, settings)]
    if kind == "tentative":
        citations = [span_citation(span, run.hits, support)]
    text = span.text
    if run.mode == "cited" and citations:
        text = f"{span.text} [{citations[0].marker}]"
    return Answer(
        question=run.question,
        standalone_question=run.standalone,
        text=text,
        abstained=False,
        kind=kind,
        p_correct=p,
        signals=seen,
        mode=run.mode,
        prompt_name=run.prompt_name,
        citations=citations,
        sentences=checks,
        support_score=support,
        confidence=gen.confidence,
        reasoning=gen.reasoning,
        hits=run.hits,
        message=" ".join(filter(None, tentative_notes)) if kind == "tentative" else "",
        usage=run.usage + gen.usage,
        timings=_timings(run, gen),
    )


TENTATIVE_NOTE = (
    "Not verified: the passage below supports this answer, but the model may be wrong; check "
    "the quote."
)


def checked(llm: BaseChatModel, question: str, span: Span, hits: list[Hit]) -> float | None:
    """The model's yes/no log-odds for the span against its own sentence under its section
    (rag_app/answering/check.py); None when the server cannot constrain the reply to yes/no."""
    from openai import BadRequestError

    chunk = hits[span.hit_index].chunk
    start, end = sentence_around(chunk.text, span.start, span.end)
    try:
        return check_answer(llm, question, chunk.text[start:end], span.text, chunk.section)
    except BadRequestError:
        return None


def judge(
    seen: dict[str, float], gen: Generation, settings: Settings, gate: GateModel | None
) -> tuple[AnswerKind, float | None]:
    """(kind, P(right)) from the answering model's fitted gate; else from token confidence."""
    if gate is None:
        if settings.answer_gate == "off" or gen.confidence is None:  # nothing to judge by
            return "confident", None
        p = gen.confidence
        # Without a fitted gate only a narrow band is tentative: the 135M model's answers with
        # token confidence below 0.8 were 94% wrong (SQuAD 2.0 dev, last round's calibration).
        answer_at = settings.min_confidence
        tentative_at = max(0.0, settings.min_confidence - FALLBACK_TENTATIVE_BAND)
    else:
        p = gate.p_correct(seen)
        answer_at, tentative_at = gate.answer_at, gate.tentative_at
    if settings.gate_answer_at is not None:
        answer_at = settings.gate_answer_at
    if settings.gate_tentative_at is not None:
        tentative_at = settings.gate_tentative_at
    return decide_kind(p, answer_at, min(tentative_at, answer_at)), round(p, 4)


def never_confident_note(gate: GateModel | None, settings: Settings) -> str:
    """Why a high P is still tentative: fitting found no set of this model's best-ranked answers
    that was right 90% of the time (as for the 0.5B preset), so it never says confident, and a
    user reading "Probably X" beside 85% should know that is why."""
    if gate is None or not gate.never_confident or settings.gate_answer_at is not None:
        return ""
    return (
        f"This model ({gate.name}) never marks an answer confident: even its best-ranked answers "
        "were right less often than the 90% that confident promises. A larger model preset "
        "gives checked answers (`rag model presets`)."
    )


def span_citation(span: Span, hits: list[Hit], support: float) -> Citation:
    """The sentence around the span, with its document offsets: a tentative answer's evidence."""
    chunk = hits[span.hit_index].chunk
    start, end = sentence_around(chunk.text, span.start, span.end)
    while start < end and chunk.text[start].isspace():
        start += 1
    while end > start and chunk.text[end - 1].isspace():
        end -= 1
    return Citation(
        marker=span.hit_index + 1,
        chunk_id=chunk.chunk_id,
        source=chunk.source,
        page=chunk.page,
        section=chunk.section,
        quote=chunk.text[start:end],
        support=support,
        start=chunk.start + start,
        end=chunk.start + end,
    )


def empty_message(name: str) -> str:
    return f"Knowledge base {name!r} is empty: add documents with `rag ingest PATH --kb {name}`."


def prepare(
    question: str,
    kb: KnowledgeBase,
    mode: Mode,
    history: History | None,
    settings: Settings,
    llm: BaseChatModel,
) -> _Run:
    started = time.perf_counter()
    standalone, query, usage = condense(question, history, llm)
    t0 = time.perf_counter()
    hits = retrieve(query, kb, settings)
    return _Run(
        question=question,
        standalone=standalone,
        mode=mode,
        prompt_name=PROMPTS[mode],
        hits=hits,
        started=started,
        retrieval_s=time.perf_counter() - t0,
        usage=usage,
    )


def answer_stream(
    question: str,
    base: KnowledgeBase,
    mode: Mode,
    history: History | None,
    settings: Settings,
    llm: BaseChatModel,
) -> Iterator[str | Answer]:
    """Yield the answer's text deltas as the model writes them, then the final Answer last.

    The final Answer is grounded and verified, so its text can differ from the streamed draft
    (e.g. the exact passage span, or the abstention phrase): callers show Answer.text at the end.
    """
    if base.count() == 0:
        empty = _Run(question, question, mode, PROMPTS[mode], [], time.perf_counter(), 0.0, Usage())
        yield _abstain(empty, empty_message(base.name))
        return
    run = prepare(question, base, mode, history, settings, llm)
    if not run.hits or best_dense(run.hits) < settings.min_relevance:
        yield _abstain(run, "No passage in the knowledge base is relevant enough.")
        return
    answer: Answer | None = None
    served = str(getattr(llm, "model_name", "") or "")
    for sentences in context_widths(context_sentences(settings, served)):
        widened = answer is not None
        if answer is not None:
            run.usage = answer.usage  # the first try's tokens count too
            yield DRAFT_RESTART  # the streamed draft starts again, over the wider context
        answer = yield from attempt(run, base, settings, llm, sentences, widened)
        if not missed(answer):
            break
    assert answer is not None
    yield answer


def context_widths(sentences: int) -> list[int]:
    """The focus widths to try: the configured one, then a wider one if that one missed.

    One sentence per question suits extraction best on SQuAD (F1 45.5 vs 38.0 with 2 sentences,
    Qwen-0.5B, 57 questions), but when the one sentence closest to the question is not the one
    holding the answer ("Who built the lighthouse?" -> "The lighthouse stands on ..."), the
    model can only echo the question or abstain; a second try over WIDER sentences finds it.
    """
    return [sentences] if sentences == 0 else [sentences, sentences + WIDER]


def missed(answer: Answer) -> bool:
    """The model found no usable span (abstained itself, ungrounded, or an echo): not the gate."""
    return answer.kind == "abstained" and answer.p_correct is None


def attempt(
    run: _Run,
    base: KnowledgeBase,
    settings: Settings,
    llm: BaseChatModel,
    sentences: int,
    widened: bool,
) -> Generator[str, None, Answer]:
    """One generation over the `sentences` closest sentences; streams, returns the Answer."""
    passages = focus(run.standalone, run.hits, base.embeddings, sentences)
    prompt = render_qa(run.prompt_name, run.standalone, passages)
    gen: Generation | None = None
    choices = None
    if settings.constrain_answers:
        choices = candidate_spans(run.standalone, passages, cited=run.mode == "cited")
    for item in stream_answer(llm, run.prompt_name, prompt, run.started, choices):
        if isinstance(item, Generation):
            gen = item
        else:
            yield item
    assert gen is not None  # stream_answer always ends with its Generation
    model = str(getattr(llm, "model_name", "") or "")
    return decide(run, gen, base, settings, len(choices or []), widened, model, llm)
