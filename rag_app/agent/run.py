"""Agent run state: the question, tool context, model and the trace that grows step by step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag_app.agent.calls import ModelCall, ask_json
from rag_app.agent.tools import ToolContext
from rag_app.records import AgentStep, Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from rag_app.settings import Settings


@dataclass
class AgentRun:
    """The state of one agent run (the trace grows step by step)."""

    question: str  # standalone: a follow-up is rewritten with the history first
    ctx: ToolContext
    llm: BaseChatModel
    started: float = field(default_factory=time.monotonic)
    asked: str = ""  # the user's own words
    plan: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # sub-questions not searched yet
    steps: list[AgentStep] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    done: set[tuple[str, str]] = field(default_factory=set)  # (action, input) already run
    calculations: list[tuple[str, str]] = field(default_factory=list)
    finish: str | None = None
    tool_s: float = 0.0  # seconds spent in tools (retrieval)
    message: str = ""

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def remaining(self) -> float:
        return self.settings.agent_total_timeout - (time.monotonic() - self.started)

    def call(self, prompt: str, schema: dict[str, object], name: str, max_tokens: int) -> ModelCall:
        timeout = min(self.settings.agent_step_timeout, max(self.remaining(), 0.01))
        result = ask_json(self.llm, prompt, name, schema, timeout, max_tokens)
        self.usage = self.usage + result.usage
        return result
