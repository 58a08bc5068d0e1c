"""Agent steering: what the step prompt shows a small model, and how the loop keeps it on course.

A 135M model copies the example it is shown and drifts; so the example in each step prompt is
the step the plan needs next, and a finish, repeat or off-topic search before every planned
sub-question was searched is replaced by that search (the step's thought says so).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from rag_app.agent.tools import describe_tools
from rag_app.answering.verify import lexical_support, split_sentences
from rag_app.records import ABSTAIN_PHRASE, AgentStep
from rag_app.words import STOPWORDS, WORD, content_words

if TYPE_CHECKING:
    from rag_app.agent.run import AgentRun

NO_INPUT = {"list_sources"}  # tools without an argument: any input means the same call
# A run of capitalised words, e.g. "Shirley Temple" or "Bank of England".
NAME = re.compile(r"[A-Z][\w'&-]*(?:\s+(?:of|the|de|and)?\s*[A-Z][\w'&-]*)*")
# What the finish example shows in place of an answer. A small model copies examples verbatim,
# so a reply that is this (or any <...> or "..." stand-in) is no answer: is_placeholder.
FINISH_PLACEHOLDER = "<short answer copied from a passage>"
_STAND_INS = {"", "...", "…", "answer", "the answer", "final answer", "your answer", "short answer"}
MAX_HOPS = 2  # searches after which the example suggests finishing


def key_terms(question: str) -> set[str]:
    """What a question is about: its names and numbers (capitalised words not opening it,
    digits), or all its content words when it has none."""
    words = WORD.findall(question)
    named = {w.lower() for i, w in enumerate(words) if (i and w[0].isupper()) or w[0].isdigit()}
    return (named & set(content_words(question))) or set(content_words(question))


def step_prompt(run: AgentRun) -> str:
    from rag_app.prompts import render_prompt

    # A small model copies the example it is shown, so the example is the step the plan needs.
    searches = sum(action == "search_docs" for action, _ in run.done)
    bridge = bridge_name(run) if searches < MAX_HOPS else None
    if run.pending:
        hint = "Search the next sub-question."
        example = {"thought": f"I look up: {run.pending[0]}", "action": "search_docs"}
        example["action_input"] = run.pending[0]
    elif bridge:
        hint = (
            f"If the passages do not answer the question yet, search what they lead to ({bridge})."
        )
        example = {"thought": f"The passage leads to {bridge}.", "action": "search_docs"}
        example["action_input"] = bridge
    else:
        hint = "Every sub-question was searched: finish with the answer if the passages hold it."
        example = {"thought": "The passages answer the question.", "action": "finish"}
        example["action_input"] = FINISH_PLACEHOLDER
    return render_prompt(
        "agent_step",
        example=json.dumps(example),
        tools=describe_tools(),
        abstain=ABSTAIN_PHRASE,
        question=run.question,
        plan=run.plan,
        steps=[_shortened(s, i, len(run.steps)) for i, s in enumerate(run.steps)],
        hint=hint,
    )


def _shortened(step: AgentStep, i: int, total: int) -> AgentStep:
    """Older observations are cut short so the prompt fits a small model's context window."""
    if i >= total - 2 or len(step.observation) <= 300:
        return step
    return step.model_copy(update={"observation": step.observation[:300] + " …"})


def steer(run: AgentRun, thought: str, action: str, action_input: str) -> tuple[str, str, str]:
    """Keep a small model on the plan: no finishing, repeating or wandering off before every
    sub-question has been searched. The override is written into the step's thought."""
    if not run.pending:
        return thought, action, action_input
    key = call_key(action, action_input)
    topic = set(content_words(run.question + " " + " ".join(run.plan)))
    off_topic = action == "search_docs" and not topic & set(content_words(action_input))
    if action == "finish" or key in run.done or off_topic:
        why = (
            "finish" if action == "finish" else "repeat" if key in run.done else "off-topic search"
        )
        note = f"[loop: {why} replaced by a search for the next unsearched sub-question]"
        return f"{thought} {note}".strip(), "search_docs", run.pending[0]
    return thought, action, action_input


def call_key(action: str, action_input: str) -> tuple[str, str]:
    """What makes two calls the same (case and spacing do not)."""
    return action, "" if action in NO_INPUT else " ".join(action_input.lower().split())


def bridge_name(run: AgentRun) -> str | None:
    """A name the best passage found so far mentions and the question does not: where a
    multi-hop question usually goes next (the film's star, the album's band)."""
    if not run.ctx.seen:
        return None
    asked = {w.lower() for w in WORD.findall(run.question)}
    searched = " ".join(text for _, text in run.done)
    best = max(run.ctx.seen, key=lambda cid: run.ctx.scores.get(cid, 0.0))
    # Names from the sentences that say what the question asks (its words other than the
    # names it already gives: "engineer completed") come first.
    relation = " ".join(set(content_words(run.question)) - key_terms(run.question))
    sentences = sorted(
        split_sentences(run.ctx.seen[best].text),
        key=lambda sentence: -lexical_support(relation or run.question, sentence),
    )
    names = []
    for match in (m for sentence in sentences for m in NAME.finditer(sentence)):
        words = {w.lower() for w in WORD.findall(match.group())}
        if words & asked or words <= STOPWORDS or match.group().lower() in searched:
            continue
        names.append(match.group())
    multi = [n for n in names if " " in n]
    return multi[0] if multi else names[0] if names else None


def is_placeholder(text: str) -> bool:
    """True for template text instead of an answer: the example's placeholder, <...>, '...'."""
    t = " ".join(text.split()).strip(" .\"'").lower()
    if t in _STAND_INS or re.fullmatch(r"<[^<>]{1,120}>", t):
        return True
    # the placeholder's words, however decorated (brackets dropped, quotes, trailing dot)
    return re.sub(r"[^a-z ]", "", t).strip() == re.sub(r"[^a-z ]", "", FINISH_PLACEHOLDER).strip()
