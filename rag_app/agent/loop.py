"""Agent mode: plan sub-questions, then ReAct steps (thought -> tool -> observation), then answer.

`ask(..., mode="agent")` calls `run_agent`. Every model step is a JSON-schema structured output;
the loop steers a small model back on course (unsearched sub-questions, repeats, off-topic
searches) and the final answer is checked against the passages the tools returned.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from rag_app.agent.calls import (
    parse_plan,
    parse_step,
    plan_schema,
    step_schema,
)
from rag_app.agent.final import final_answer
from rag_app.agent.run import AgentRun
from rag_app.agent.steer import call_key, is_placeholder, key_terms, steer, step_prompt
from rag_app.agent.tools import TOOLS, ToolContext, run_tool
from rag_app.answering.verify import content_words
from rag_app.records import AgentStep, Answer, Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase
    from rag_app.settings import Settings

History = list[tuple[str, str]]
FIELDS = '{"thought": ..., "action": ..., "action_input": ...}'
MAX_SUB_QUESTIONS = 3
PLAN_TOKENS = 192
STEP_TOKENS = 160


def run_agent(
    question: str,
    kb: KnowledgeBase,
    settings: Settings,
    llm: BaseChatModel,
    history: History | None = None,
) -> Answer:
    """Answer `question` with the plan -> act -> observe loop; the Answer carries plan and trace."""
    from rag_app.answering.history import condense

    started = time.monotonic()
    standalone, _, usage = condense(question, history, llm)
    ctx = ToolContext(kb=kb, settings=settings)
    run = AgentRun(standalone, ctx, llm, started=started, asked=question, usage=usage)
    make_plan(run)
    react(run)
    return final_answer(run)


def make_plan(run: AgentRun) -> None:
    """Ask for sub-questions; unusable output falls back to the question itself."""
    from rag_app.prompts import render_prompt

    prompt = render_prompt("agent_plan", question=run.question)
    result = run.call(prompt, plan_schema(MAX_SUB_QUESTIONS), "agent_plan", PLAN_TOKENS)
    subs = parse_plan(result.data) if result.data is not None else []
    keys = key_terms(run.question)
    kept: list[str] = []
    for sub in subs:
        # An off-topic sub-question (often the prompt's example, copied) or a duplicate would
        # only waste a search: each must name something the question names.
        if keys & set(content_words(sub)) and sub.lower() not in {k.lower() for k in kept}:
            kept.append(sub)
    # One sub-question is a small model's rewording of the question: it only loses detail.
    run.plan = kept[:MAX_SUB_QUESTIONS] if len(kept) > 1 else [run.question]
    run.pending = list(run.plan)


def react(run: AgentRun) -> None:
    """Thought -> action -> observation until finish, a stop condition or agent_max_steps."""
    settings = run.settings
    failures = 0
    for index in range(1, settings.agent_max_steps + 1):
        if run.remaining() <= 0:
            budget = f"{settings.agent_total_timeout:g} s, agent_total_timeout"
            run.message = f"Agent stopped: the total time budget ({budget}) ran out."
            return
        outcome = take_step(run, index, retried=failures > 0)
        if outcome == "stop":
            return
        failures = failures + 1 if outcome == "invalid" else 0
    run.message = (
        f"Agent stopped after {settings.agent_max_steps} steps (agent_max_steps) without "
        "finishing; the answer uses what it found so far."
    )


def take_step(run: AgentRun, index: int, retried: bool) -> Literal["ok", "invalid", "stop"]:
    """One model step and its action; every outcome is recorded as an AgentStep."""
    started = time.monotonic()
    result = run.call(step_prompt(run), step_schema(list(TOOLS)), "agent_step", STEP_TOKENS)
    decision, error = (
        parse_step(result.data, list(TOOLS)) if result.error is None else (None, result.error)
    )
    if decision is None:
        note = f"Your reply could not be used ({error}). Reply with one JSON object: {FIELDS}."
        record(run, index, started, result.usage, "", "invalid", result.text[:200], note, error)
        if result.timed_out or retried:
            why = "timed out (agent_step_timeout)" if result.timed_out else "failed twice in a row"
            run.message = f"Agent stopped: the model's step output {why}: {error}"
            return "stop"
        return "invalid"  # the next step is the one retry, with this observation in its prompt
    thought, action, action_input = steer(run, *decision)
    step = (thought, action, action_input)
    if action == "finish" and is_placeholder(action_input):
        why = "finish input was the prompt's placeholder, not an answer"
        note = "Write the answer itself (words from the passages) as action_input of finish."
        record(run, index, started, result.usage, *step, note, why)
        if retried:
            run.message = f"Agent stopped: the model's {why}; answering from what it found."
            return "stop"
        return "invalid"
    if action == "finish":
        run.finish = action_input.strip()
        record(run, index, started, result.usage, *step, f"Final answer: {run.finish}")
        return "stop"
    key = call_key(action, action_input)
    if key in run.done:
        why = f"repeated {action}({action_input!r}) with the same input"
        record(run, index, started, result.usage, *step, f"Stopped: {why}.", why)
        run.message = f"Agent stopped: the model {why}; answering from what it found."
        return "stop"
    run.done.add(key)
    record(run, index, started, result.usage, *step, act(run, action, action_input))
    return "ok"


def act(run: AgentRun, action: str, action_input: str) -> str:
    """Run the tool, cap its observation, and keep track of searched sub-questions and sums."""
    started = time.monotonic()
    observation = run_tool(run.ctx, action, action_input)
    run.tool_s += time.monotonic() - started
    cap = run.settings.agent_max_observation_chars
    if len(observation) > cap:
        observation = observation[: cap - 1] + "…"
    if action == "search_docs":
        words = set(content_words(action_input))
        run.pending = [
            sub
            for sub in run.pending
            if len(words & set(content_words(sub))) < 0.5 * len(set(content_words(sub)))
        ]
    if action == "calculator" and not observation.startswith("Error"):
        run.calculations.append((action_input.strip(), observation))
    return observation


def record(
    run: AgentRun,
    index: int,
    started: float,
    usage: Usage,
    thought: str,
    action: str,
    action_input: str,
    observation: str,
    error: str | None = None,
) -> None:
    run.steps.append(
        AgentStep(
            index=index,
            thought=thought,
            action=action,
            action_input=action_input,
            observation=observation,
            error=error,
            usage=usage,
            seconds=round(time.monotonic() - started, 3),
        )
    )
