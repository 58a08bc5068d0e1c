"""Agent answer: the final answer of a run, checked against the passages its tools returned, cited.

A small model may finish with an answer it never read; such an answer is replaced by one written
from the observed passages (prompt agent_answer), and an answer still not found in them abstains.
A choice or a difference may then be worked out from quoted facts (derive.py); the answer's form
is checked (form.py) and its kind and P(right) decided as in direct mode (verdict.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from rag_app.agent.calls import parse_answer
from rag_app.agent.derive import (
    Derived,
    derive_choice,
    derive_difference,
    derive_measure_choice,
)
from rag_app.agent.steer import is_placeholder
from rag_app.agent.verdict import Verdict, span_verdict, unmeasured
from rag_app.answering.form import (
    THOUSANDS,
    answer_form,
    asks_difference,
    is_yes_no,
    named_options,
    numbers_in,
    options_in,
    quoted_difference,
    span_form,
)
from rag_app.answering.verify import content_words, lexical_support, split_sentences, verify
from rag_app.records import ABSTAIN_PHRASE, Answer, Citation, Hit, Timings
from rag_app.serving.presets import context_sentences

if TYPE_CHECKING:
    from rag_app.agent.run import AgentRun

GROUNDED = 0.67  # share of the answer's content words that must occur in one observed passage
MAX_ANSWER_PASSAGES = 6
MAX_CITED_FOR_TEXT = 2
MIN_AGENT_SENTENCES = 3
ANSWER_TOKENS = 96
TENTATIVE_NOTE = (
    "Not verified: the cited passages support this answer, but it may be wrong; check the quotes."
)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def final_answer(run: AgentRun) -> Answer:
    """Build the Answer: grounded text (or abstention), citations, verification, its kind and
    P(right) (rag_app/agent/verdict.py), and the trace."""
    hits = observed_hits(run)
    text, notes = candidate_text(run, hits)
    derived = derive(run, text, hits) if hits else None
    if derived is not None:
        text = derived.text
        notes.append(derived.note)
    citations: list[Citation] = []
    verdict = Verdict("abstained", 0.0)
    if text:
        citations = (
            [_citation(i, hits[i], value) for i, value in sorted(derived.cited)]
            if derived is not None
            else cite(run.question if text in {"yes", "no"} else text, run, hits)
        )
        extra = [derived.calculation] if derived is not None and derived.calculation else []
        form_ok, why = answer_form(run.question, text, [*run.calculations, *extra], citations)
        verdict = judge(run, text, hits, citations, form_ok, derived is not None)
        notes.append(why)
        misread, misread_why = span_form(run.question, text)
        if misread == "wrong" and derived is None:  # e.g. a calendar year for "how many years"
            verdict = Verdict("abstained", verdict.p_correct)
            notes.append(misread_why)
        if verdict.kind == "abstained" and form_ok:
            notes.append(
                f"Not sure enough to answer: the agent's answer, {text!r}, is likely wrong "
                f"(estimated {verdict.p_correct:.0%} right)."
            )
    if verdict.kind == "abstained":
        text, citations = ABSTAIN_PHRASE, []
    elif verdict.kind == "tentative":
        notes.append(TENTATIVE_NOTE)
    return assemble(run, hits, text, citations, verdict, " ".join(n for n in notes if n))


def candidate_text(run: AgentRun, hits: list[Hit]) -> tuple[str, list[str]]:
    """The agent's own answer if the passages back it, else one written from them, or ""."""
    notes = [run.message] if run.message else []
    if not hits:
        return "", [*notes, "The agent found no passages to answer from."]
    text = grounded_text(run.finish or "", run, hits)
    if not text:
        text = grounded_text(written_answer(run, hits), run, hits)
        notes.append(
            "The agent's own final answer is not backed by the passages it read, so the "
            "answer was written from those passages (prompt qa)."
        )
    return text, notes


def derive(run: AgentRun, text: str, hits: list[Hit]) -> Derived | None:
    """A choice settled by the quoted years, or a difference the agent did not calculate but
    the passages quote both values of (rag_app/agent/derive.py); None when neither applies."""
    options = options_in(run.question)
    if options:
        derived = derive_choice(run.question, hits) or derive_measure_choice(run.question, hits)
        picked = named_options(text, options)
        if derived is not None and picked and derived.text not in picked:
            note = f"The agent answered {text!r}, but the quoted facts point to the other option. "
            return replace(derived, note=note + derived.note)
        return derived
    if not asks_difference(run.question):
        return None
    if text and quoted_difference(text, run.calculations, cite(text, run, hits)) is not None:
        return None  # the agent's own calculation stands
    return derive_difference(run.question, hits)


def judge(
    run: AgentRun,
    text: str,
    hits: list[Hit],
    citations: list[Citation],
    form_ok: bool,
    derived: bool,
) -> Verdict:
    """The gate for a passage span; the conservative rule for anything else."""
    from rag_app.answering.ground import ground

    cited = [h for h in hits if h.chunk.chunk_id in {c.chunk_id for c in citations}]
    if derived:
        return unmeasured(1.0, form_ok)  # every fact it rests on is quoted and cited
    if options_in(run.question):
        return unmeasured(0.5, form_ok)  # an option named, but no quoted years checked it
    if text in {"yes", "no"}:
        share = max((lexical_support(run.question, h.chunk.text) for h in cited), default=0.0)
        return unmeasured(share, form_ok)
    calculation = next((c for c in run.calculations if c[1] in NUMBER.findall(text)), None)
    if calculation is not None:
        quoted = {n for c in citations for n in numbers_in(c.quote)}
        inputs = numbers_in(calculation[0])
        return unmeasured(sum(n in quoted for n in inputs) / max(1, len(inputs)), form_ok)
    span = ground(text, hits)
    if span is None:
        return unmeasured(0.0, False)
    support = max((c.support for c in citations), default=0.0)
    model = str(getattr(run.llm, "model_name", "") or "")
    return span_verdict(run.question, span, hits, support, run.settings, model, form_ok)


def assemble(
    run: AgentRun,
    hits: list[Hit],
    text: str,
    citations: list[Citation],
    verdict: Verdict,
    message: str,
) -> Answer:
    abstained = verdict.kind == "abstained"
    embeddings = getattr(run.ctx.kb, "embeddings", None)
    checks, _, support = (
        ([], [], 0.0)
        if abstained
        else verify(text, hits, embeddings, run.settings.support_threshold)
    )
    return Answer(
        question=run.asked or run.question,
        standalone_question=run.question,
        text=text,
        abstained=abstained,
        kind=verdict.kind,
        p_correct=verdict.p_correct,
        signals=verdict.signals,
        mode="agent",
        prompt_name="agent_step",
        citations=citations,
        sentences=checks,
        support_score=support,
        hits=hits,
        related=sorted(hits, key=lambda h: -h.score)[:3] if abstained else [],
        plan=run.plan,
        steps=run.steps,
        message=message,
        usage=run.usage,
        timings=Timings(
            retrieval_s=round(run.tool_s, 3), total_s=round(time.monotonic() - run.started, 3)
        ),
    )


def observed_hits(run: AgentRun) -> list[Hit]:
    """Every passage a tool showed, numbered in the order first seen (= the [n] in observations)."""
    ctx = run.ctx
    return [Hit(chunk=chunk, score=ctx.scores.get(cid, 0.0)) for cid, chunk in ctx.seen.items()]


def grounded_text(text: str, run: AgentRun, hits: list[Hit]) -> str:
    """The answer as the documents word it, or "" when it is not backed by what the tools
    returned: a calculator result, yes/no to a yes/no question, or a span of ONE passage
    (words picked from several passages, like "Marla Kestrel", are how a small model invents)."""
    from rag_app.answering.ground import ground, is_abstention, normalize

    text = " ".join(text.split())
    if is_abstention(text) or is_placeholder(text):
        return ""
    if is_yes_no(run.question) and normalize(text) in {"yes", "no"}:
        return normalize(text)
    if any(normalize(result) in normalize(text).split() for _, result in run.calculations):
        return text
    question, words = set(content_words(run.question)), set(content_words(text))
    if words <= question and " or " not in run.question.lower():
        return ""  # the question said back, unless it offers a choice ("A or B?")
    if max(lexical_support(text, h.chunk.text) for h in hits) < GROUNDED:
        return ""
    span = ground(text, hits)
    return span.text if span is not None else ""


def written_answer(run: AgentRun, hits: list[Hit]) -> str:
    """One more model call, as in direct mode (prompt qa): a short answer from the observed
    passage sentences nearest the question; calculator results are passages too."""
    from rag_app.answering.generate import answer_schema, focus, render_qa

    best = sorted(sorted(range(len(hits)), key=lambda i: -hits[i].score)[:MAX_ANSWER_PASSAGES])
    embeddings = getattr(run.ctx.kb, "embeddings", None)
    # A multi-part question needs a fact from each part: at least one sentence per part (on
    # HotpotQA, direct mode scored F1 10.7 with 3 sentences against 4.8 with 1).
    served = str(getattr(run.llm, "model_name", "") or "")
    sentences = max(context_sentences(run.settings, served), MIN_AGENT_SENTENCES)
    picked = focus(run.question, [hits[i] for i in best], embeddings, sentences)
    # Keep the run-wide passage numbers, so [n] means the same passage as in the trace.
    passages = [{**p, "n": best[p["n"] - 1] + 1} for p in picked]
    for j, (expression, value) in enumerate(run.calculations, start=len(hits) + 1):
        passages.append(
            {"n": j, "source": "calculator", "section": "", "text": f"{expression} = {value}"}
        )
    prompt = render_qa("qa", run.question, passages)
    reply = run.call(prompt, answer_schema("qa"), "qa", ANSWER_TOKENS)
    return parse_answer(reply.data)


def cite(text: str, run: AgentRun, hits: list[Hit]) -> list[Citation]:
    """Cite the passages holding the answer's words and each number the calculator used."""
    chosen: dict[int, Citation] = {}
    for expression, _ in run.calculations:
        for number in NUMBER.findall(THOUSANDS.sub("", expression)):
            for i, hit in enumerate(hits):
                if re.search(
                    rf"(?<![\d.]){re.escape(number)}(?![\d])", hit.chunk.text.replace(",", "")
                ):
                    chosen.setdefault(i, _citation(i, hit, number))
                    break
    support = [lexical_support(text, h.chunk.text) for h in hits]
    ranked = sorted(range(len(hits)), key=lambda i: (-support[i], -hits[i].score, i))
    best = max(support, default=0.0)
    # Only the passages that support the answer best: "48 metres" should not cite every "metres".
    cited_for_text = [i for i in ranked if support[i] >= max(GROUNDED, best)][:MAX_CITED_FOR_TEXT]
    if not cited_for_text and not chosen and best > 0:
        cited_for_text = ranked[:1]
    for i in cited_for_text:
        chosen.setdefault(i, _citation(i, hits[i], text))
    return [chosen[i] for i in sorted(chosen)]


def _citation(i: int, hit: Hit, evidence: str) -> Citation:
    sentences = split_sentences(hit.chunk.text) or [hit.chunk.text]
    # The sentence holding the answer itself, else the one sharing most of its words
    # ("1,200" and "1200" count as the same number).
    quote = max(
        sentences,
        key=lambda s: (
            evidence.lower() in s.lower(),
            max(lexical_support(evidence, s), lexical_support(evidence, s.replace(",", ""))),
        ),
    )
    return Citation(
        marker=i + 1,
        chunk_id=hit.chunk.chunk_id,
        source=hit.chunk.source,
        page=hit.chunk.page,
        section=hit.chunk.section,
        quote=quote,
        support=round(lexical_support(evidence, hit.chunk.text.replace(",", "")), 4),
    )
