"""Agent answer: the final answer of a run, checked against the passages its tools returned, cited.

A small model may finish with an answer it never read; such an answer is replaced by one written
from the observed passages (prompt agent_answer), and an answer still not found in them abstains.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from rag_app.agent.calls import parse_answer
from rag_app.agent.steer import is_placeholder
from rag_app.agent.tools import THOUSANDS
from rag_app.answering.verify import content_words, lexical_support, split_sentences, verify
from rag_app.records import ABSTAIN_PHRASE, Answer, Citation, Hit, Timings

if TYPE_CHECKING:
    from rag_app.agent.run import AgentRun

GROUNDED = 0.67  # share of the answer's content words that must occur in one observed passage
MAX_ANSWER_PASSAGES = 6
MAX_CITED_FOR_TEXT = 2
MIN_AGENT_SENTENCES = 3
ANSWER_TOKENS = 96
YES_NO_QUESTION = re.compile(r"(is|are|was|were|do|does|did|has|have|had|can|could|will)\b", re.I)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def final_answer(run: AgentRun) -> Answer:
    """Build the Answer: grounded text (or abstention), citations, verification, trace."""
    hits = observed_hits(run)
    text, notes = "", [run.message] if run.message else []
    if hits:
        text = grounded_text(run.finish or "", run, hits)
        if not text:
            text = grounded_text(written_answer(run, hits), run, hits)
            notes.append(
                "The agent's own final answer is not backed by the passages it read, so the "
                "answer was written from those passages (prompt qa)."
            )
    else:
        notes.append("The agent found no passages to answer from.")
    abstained = not text
    if abstained:
        text = ABSTAIN_PHRASE
    evidence = run.question if text in {"yes", "no"} else text
    citations = [] if abstained else cite(evidence, run, hits)
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
        mode="agent",
        prompt_name="agent_step",
        citations=citations,
        sentences=checks,
        support_score=support,
        hits=hits,
        related=sorted(hits, key=lambda h: -h.score)[:3] if abstained else [],
        plan=run.plan,
        steps=run.steps,
        message=" ".join(notes),
        usage=run.usage,
        timings=Timings(
            retrieval_s=round(run.tool_s, 3), total_s=round(time.monotonic() - run.started, 3)
        ),
    )


def observed_hits(run: AgentRun) -> list[Hit]:
    """Every passage a tool showed, numbered in the order first seen (= the [n] in observations)."""
    ctx = run.ctx
    return [Hit(chunk=chunk, score=ctx.scores.get(cid, 0.0)) for cid, chunk in ctx.seen.items()]


def is_yes_no(question: str) -> bool:
    return bool(YES_NO_QUESTION.match(question.strip()))


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
    sentences = max(run.settings.context_sentences, MIN_AGENT_SENTENCES)
    picked = focus(run.question, [hits[i] for i in best], embeddings, sentences)
    # Keep the run-wide passage numbers, so [n] means the same passage as in the trace.
    passages = [{**p, "n": best[p["n"] - 1] + 1} for p in picked]
    for j, (expression, value) in enumerate(run.calculations, start=len(hits) + 1):
        passages.append({"n": j, "source": "calculator", "text": f"{expression} = {value}"})
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
