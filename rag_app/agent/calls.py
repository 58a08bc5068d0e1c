"""Agent model calls: JSON-schema structured outputs from vLLM, parsed, checked, time-limited.

SEE: vLLM structured outputs, OpenAI `response_format={"type": "json_schema", ...}`
(vllm/entrypoints/openai/chat_completion/protocol.py accepts this spelling).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai

from rag_app.errors import LLMError
from rag_app.records import Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

FIRST_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
# Short fields keep a small model from rambling (and CPU generation time down).
# vLLM 0.32's xgrammar answers HTTP 500 to a pattern repeat bound above ~128: stay below it.
THOUGHT_CHARS = 120
INPUT_CHARS = 100
# A real question (a small model otherwise "plans" by writing an answer): one line, ends with "?".
SUB_QUESTION = (
    r"^(What|Who|Whom|Whose|When|Where|Which|Why|How|Is|Are|Was|Were|Do|Does|Did|Has|Have|Can|In)"
    r" [^?\n]{3,90}\?$"
)


@dataclass(frozen=True)
class ModelCall:
    """One structured model call: raw text, parsed JSON (None when unusable) and why not."""

    text: str
    data: dict[str, Any] | None
    error: str | None
    usage: Usage
    timed_out: bool = False


def _string(max_length: int, pattern: str | None = None) -> dict[str, Any]:
    # xgrammar ignores maxLength next to a pattern, so the pattern carries the length bound.
    pattern = pattern or rf"^[^\n\"\\]{{0,{max_length}}}$"
    return {"type": "string", "maxLength": max_length, "pattern": pattern}


def step_schema(tools: list[str]) -> dict[str, Any]:
    """{thought, action, action_input}; action is one of the tool names or finish."""
    return {
        "type": "object",
        "properties": {
            "thought": _string(THOUGHT_CHARS),
            "action": {"type": "string", "enum": [*tools, "finish"]},
            "action_input": _string(INPUT_CHARS),
        },
        "required": ["thought", "action", "action_input"],
        "additionalProperties": False,
    }


def plan_schema(max_items: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "sub_questions": {
                "type": "array",
                "items": _string(INPUT_CHARS, SUB_QUESTION),
                "minItems": 1,
                "maxItems": max_items,
            }
        },
        "required": ["sub_questions"],
        "additionalProperties": False,
    }


def ask_json(
    llm: BaseChatModel,
    prompt: str,
    name: str,
    schema: dict[str, Any],
    timeout: float,
    max_tokens: int,
) -> ModelCall:
    """Ask for JSON matching `schema`; errors, timeouts and bad JSON come back in ModelCall."""
    from langchain_core.messages import HumanMessage

    response_format = {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": True},
    }
    # max_tokens bounds a reply that pads JSON with endless whitespace (the grammar allows it).
    bound = llm.bind(response_format=response_format, max_tokens=max_tokens)
    # A thread per call: a reply that overruns its time budget is abandoned there, and the
    # next call does not queue behind it.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-llm")
    future = pool.submit(bound.invoke, [HumanMessage(content=prompt)])
    try:
        message = future.result(timeout=timeout)
    except FutureTimeout:
        return ModelCall("", None, f"no reply within {timeout:.0f} s", Usage(), timed_out=True)
    except LLMError as exc:
        # A server that is down or silent ends the run with its clear error; a request the
        # server refused (HTTP 4xx/5xx, e.g. a prompt too long) is a failed step instead.
        if not isinstance(exc.__cause__, openai.APIStatusError):
            raise
        return ModelCall("", None, f"model call failed: {exc}", Usage())
    except Exception as exc:  # truncated structured output (finish_reason=length), bad replies
        return ModelCall("", None, f"model call failed: {type(exc).__name__}: {exc}", Usage())
    finally:
        pool.shutdown(wait=False)
    text = message.content if isinstance(message.content, str) else str(message.content)
    usage = _usage(getattr(message, "usage_metadata", None))
    data, error = parse_json(text)
    return ModelCall(text, data, error, usage)


def _usage(meta: Any) -> Usage:
    if not meta:
        return Usage()
    return Usage(
        prompt_tokens=int(meta.get("input_tokens", 0)),
        completion_tokens=int(meta.get("output_tokens", 0)),
    )


def parse_json(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in `text` (a lenient second try takes the outermost {...})."""
    for candidate in (text.strip(), *FIRST_OBJECT.findall(text)):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value, None
        return None, f"expected a JSON object, got {type(value).__name__}"
    return None, f"not valid JSON: {text[:80]!r}" if text.strip() else "empty reply"


def parse_step(
    data: dict[str, Any] | None, tools: list[str]
) -> tuple[tuple[str, str, str] | None, str | None]:
    """(thought, action, action_input) from a step reply, or None and what was wrong."""
    if data is None:
        return None, "not valid JSON"
    missing = [k for k in ("thought", "action", "action_input") if k not in data]
    if missing:
        return None, f"missing field(s): {', '.join(missing)}"
    action = str(data["action"]).strip()
    if action not in [*tools, "finish"]:
        return None, f"unknown action {action!r}; use one of {', '.join([*tools, 'finish'])}"
    action_input = data["action_input"]
    if not isinstance(action_input, str):
        action_input = json.dumps(action_input)
    return (str(data["thought"]).strip(), action, action_input.strip()), None


def parse_plan(data: dict[str, Any]) -> list[str]:
    subs = data.get("sub_questions")
    if not isinstance(subs, list):
        return []
    return [" ".join(str(s).split()) for s in subs if str(s).strip()]


def parse_answer(data: dict[str, Any] | None) -> str:
    if data is None:
        return ""
    return " ".join(str(data.get("answer", "")).split())
