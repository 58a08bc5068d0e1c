"""Agent loop with a scripted chat model over a real (hashing-embedded) knowledge base."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_texts
from rag_app.agent.loop import run_agent
from rag_app.agent.tools import describe_tools
from rag_app.errors import LLMError
from rag_app.records import ABSTAIN_PHRASE
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

DOCS = [
    (
        "lighthouse.txt",
        "The Kestrel Point Lighthouse stands on the northern cape of Varn Island. "
        "The tower is 48 metres tall. It was completed in 1871 by the engineer Mara Voss.",
    ),
    (
        "bridge.txt",
        "The Old Mill Bridge crosses the river Tay at Dunmore. Its main span is 130 metres long. "
        "The bridge opened to traffic in 1902.",
    ),
    (
        "orchard.txt",
        "The Fenwick orchard grows 12 varieties of apple. Harvest festivals began there in 1955.",
    ),
]
QUESTION = (
    "What is the height of the Kestrel Point Lighthouse plus the main span of the Old Mill Bridge?"
)
PLAN = ["How tall is the Kestrel Point Lighthouse?", "How long is the Old Mill Bridge main span?"]


def plan(*subs: str) -> str:
    return json.dumps({"sub_questions": list(subs)})


def step(action: str, action_input: str, thought: str = "next") -> str:
    return json.dumps({"thought": thought, "action": action, "action_input": action_input})


class ScriptedChat(BaseChatModel):
    """Replies with scripted strings in order and records each prompt and bound response_format."""

    replies: list[str]
    prompts: list[str] = Field(default_factory=list)
    formats: list[Any] = Field(default_factory=list)
    delay: float = 0.0
    error: Exception | None = None  # raised instead of replying

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        self.prompts.append(str(messages[-1].content))
        self.formats.append(kw.get("response_format"))
        text = self.replies.pop(0) if self.replies else "SCRIPT EXHAUSTED"
        usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
        message = AIMessage(text, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.fixture
def kb(settings: Settings) -> Iterator[KnowledgeBase]:
    kb = open_kb("agent", settings=settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS, kb)
    yield kb
    kb.close()


def names(answer: Any) -> list[str]:
    return [Path(c.source).name for c in answer.citations]


def test_two_hop_question_searches_twice_then_calculates_and_cites_both(
    kb: KnowledgeBase, settings: Settings
) -> None:
    llm = ScriptedChat(
        replies=[
            plan(*PLAN),
            step("search_docs", "Kestrel Point Lighthouse height"),
            step("search_docs", "Old Mill Bridge main span length"),
            step("calculator", "48 + 130", "add the two lengths"),
            step("finish", "178"),
        ]
    )
    answer = run_agent(QUESTION, kb, settings, llm)
    actions = [s.action for s in answer.steps]
    assert actions == ["search_docs", "search_docs", "calculator", "finish"]
    assert answer.steps[2].observation == "178"
    assert answer.text == "178" and not answer.abstained
    assert answer.plan == PLAN
    assert sorted(names(answer)) == ["bridge.txt", "lighthouse.txt"]
    quotes = " ".join(c.quote for c in answer.citations)
    assert "48 metres" in quotes and "130 metres" in quotes
    seen = {h.chunk.chunk_id for h in answer.hits}
    assert {c.chunk_id for c in answer.citations} <= seen
    assert "chunk_id=" in answer.steps[0].observation and "[1]" in answer.steps[0].observation
    assert answer.usage.prompt_tokens == 500 and answer.steps[0].usage.completion_tokens == 20
    assert all(s.error is None for s in answer.steps)


def test_every_model_call_requests_the_json_schema(kb: KnowledgeBase, settings: Settings) -> None:
    llm = ScriptedChat(replies=[plan(PLAN[0]), step("search_docs", PLAN[0]), step("finish", "48")])
    run_agent(PLAN[0], kb, settings, llm)
    schemas = [f["json_schema"]["schema"] for f in llm.formats]
    assert all(f["type"] == "json_schema" for f in llm.formats)
    assert "sub_questions" in schemas[0]["properties"]
    enum = schemas[1]["properties"]["action"]["enum"]
    assert set(enum) == {"search_docs", "read_source", "list_sources", "calculator", "finish"}
    for tool in describe_tools():  # tool descriptions come from the functions' docstrings
        assert tool["signature"] in llm.prompts[1] and tool["description"] in llm.prompts[1]


def test_malformed_output_gets_one_retry(kb: KnowledgeBase, settings: Settings) -> None:
    llm = ScriptedChat(
        replies=[
            plan(PLAN[0]),
            "Sure! I will search for the lighthouse.",
            step("search_docs", "Kestrel Point Lighthouse height"),
            step("finish", "48 metres"),
        ]
    )
    answer = run_agent(PLAN[0], kb, settings, llm)
    first = answer.steps[0]
    assert first.error is not None and "JSON" in first.error
    assert "could not be used" in first.observation
    assert "could not be used" in llm.prompts[2]  # the retry prompt shows what was wrong
    assert [s.action for s in answer.steps[1:]] == ["search_docs", "finish"]
    assert answer.text == "48 metres" and names(answer) == ["lighthouse.txt"]


def test_repeated_malformed_output_ends_the_run(kb: KnowledgeBase, settings: Settings) -> None:
    llm = ScriptedChat(replies=[plan(PLAN[0]), "{not json", '{"thought": "x", "action": "fly"}'])
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert len(answer.steps) == 2 and all(s.error for s in answer.steps)
    assert "missing field" in (answer.steps[1].error or "")
    assert "failed twice in a row" in answer.message
    assert answer.abstained and answer.text == ABSTAIN_PHRASE


def test_looping_model_is_stopped(kb: KnowledgeBase, settings: Settings) -> None:
    settings = settings.model_copy(update={"agent_max_steps": 8})
    llm = ScriptedChat(replies=[plan(PLAN[0])] + [step("search_docs", PLAN[0])] * 8)
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert len(answer.steps) == 2
    assert answer.steps[1].error and "repeated" in answer.steps[1].error
    assert "repeated" in answer.message


def test_max_steps_ends_the_run_with_a_clear_message(kb: KnowledgeBase, settings: Settings) -> None:
    settings = settings.model_copy(update={"agent_max_steps": 3})
    queries = ["lighthouse tower", "lighthouse engineer", "lighthouse island"]
    llm = ScriptedChat(
        replies=[plan(PLAN[0])] + [step("search_docs", q) for q in queries] + ['{"answer": "48"}']
    )
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert len(answer.steps) == 3
    assert "after 3 steps" in answer.message and "agent_max_steps" in answer.message
    assert answer.text == "48"  # answered from the passages it found, and says it stopped


def test_tool_exception_becomes_an_observation(kb: KnowledgeBase, settings: Settings) -> None:
    kb.close()  # every later catalog read raises inside the tool
    llm = ScriptedChat(
        replies=[
            plan(PLAN[0]),
            step("list_sources", ""),
            step("calculator", "1/0"),
            step("finish", ""),
        ]
    )
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert answer.steps[0].observation.startswith("Error: list_sources failed:")
    assert answer.steps[1].observation.startswith("Error: calculator:")
    assert answer.abstained


def test_finishing_before_the_plan_is_searched_is_steered(
    kb: KnowledgeBase, settings: Settings
) -> None:
    llm = ScriptedChat(
        replies=[
            plan(*PLAN),
            step("finish", "Paris"),
            step("search_docs", "zebra quantum"),  # off-topic: replaced by the next sub-question
            step("finish", "Paris"),  # not in any passage: the answer is rewritten from passages
            '{"answer": "48 metres"}',
        ]
    )
    answer = run_agent(QUESTION, kb, settings, llm)
    assert [s.action_input for s in answer.steps[:2]] == PLAN
    assert all("[loop:" in s.thought for s in answer.steps[:2])
    assert answer.steps[2].action == "finish"
    assert answer.text == "48 metres" and "lighthouse.txt" in names(answer)


def test_ungrounded_answers_abstain_and_show_related(kb: KnowledgeBase, settings: Settings) -> None:
    llm = ScriptedChat(
        replies=[
            plan(PLAN[0]),
            step("search_docs", PLAN[0]),
            step("finish", "It was painted purple by Napoleon"),
            '{"answer": "Napoleon painted it"}',
        ]
    )
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert answer.abstained and answer.text == ABSTAIN_PHRASE
    assert answer.related and not answer.citations


def test_empty_knowledge_base_abstains_with_a_message(settings: Settings) -> None:
    kb = open_kb("empty", settings=settings, create=True, embeddings=HashingEmbeddings())
    llm = ScriptedChat(
        replies=[plan("What is X?"), step("search_docs", "What is X?"), step("finish", "Y")]
    )
    answer = run_agent("What is X?", kb, settings, llm)
    assert answer.abstained and "No passages found" in answer.steps[0].observation
    assert "no passages" in answer.message


def test_slow_model_step_times_out(kb: KnowledgeBase, settings: Settings) -> None:
    settings = settings.model_copy(update={"agent_step_timeout": 0.3})
    llm = ScriptedChat(replies=[plan(PLAN[0]), step("search_docs", PLAN[0])], delay=0.5)
    started = time.monotonic()
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert time.monotonic() - started < 2.0
    assert "timed out" in answer.message and answer.abstained


def test_follow_up_is_condensed_with_the_history(kb: KnowledgeBase, settings: Settings) -> None:
    history = [("user", "Who built the Kestrel Point Lighthouse?"), ("assistant", "Mara Voss")]
    llm = ScriptedChat(
        replies=[
            "When was the Kestrel Point Lighthouse completed?",  # the condense prompt's reply
            plan("When was the Kestrel Point Lighthouse completed?"),
            step("search_docs", "Kestrel Point Lighthouse completed"),
            step("finish", "1871"),
        ]
    )
    answer = run_agent("And when was it completed?", kb, settings, llm, history)
    assert answer.question == "And when was it completed?"
    assert answer.standalone_question == "When was the Kestrel Point Lighthouse completed?"
    assert answer.text == "1871" and names(answer) == ["lighthouse.txt"]


def test_a_one_item_plan_keeps_the_users_question(kb: KnowledgeBase, settings: Settings) -> None:
    llm = ScriptedChat(
        replies=[plan("How tall is the tower?"), step("search_docs", QUESTION), step("finish", "")]
    )
    answer = run_agent(QUESTION, kb, settings, llm)
    assert answer.plan == [QUESTION]


def test_yes_no_answer_to_a_yes_no_question(kb: KnowledgeBase, settings: Settings) -> None:
    question = "Was the Kestrel Point Lighthouse completed in 1871?"
    llm = ScriptedChat(
        replies=[plan(question), step("search_docs", question), step("finish", "Yes")]
    )
    answer = run_agent(question, kb, settings, llm)
    assert answer.text == "yes" and names(answer) == ["lighthouse.txt"]


def test_schema_patterns_stay_within_what_vllm_compiles() -> None:
    # vLLM 0.32 (xgrammar) answers HTTP 500 to a regex repeat bound above ~128.
    from rag_app.agent.calls import plan_schema, step_schema

    text = json.dumps([step_schema(["search_docs"]), plan_schema(3)])
    bounds = [int(b) for b in re.findall(r"\{\d+,(\d+)\}", text)]
    assert bounds and max(bounds) <= 128


def test_plan_drops_sub_questions_about_something_else(
    kb: KnowledgeBase, settings: Settings
) -> None:
    copied = plan("How long is the Loire?", "How long is the Rhone?", PLAN[0], PLAN[1])
    llm = ScriptedChat(replies=[copied, step("finish", "")])
    answer = run_agent(QUESTION, kb, settings, llm)
    assert answer.plan == PLAN


def test_after_the_plan_the_example_step_follows_the_passage(
    kb: KnowledgeBase, settings: Settings
) -> None:
    question = "Which engineer completed the Kestrel Point Lighthouse?"
    llm = ScriptedChat(
        replies=[
            plan(question),
            step("search_docs", question),
            step("search_docs", "Mara Voss"),
            step("finish", "Mara Voss"),
        ]
    )
    answer = run_agent(question, kb, settings, llm)
    assert '"action_input": "Mara Voss"' in llm.prompts[2]  # the name the passage leads to
    assert '"action": "finish"' in llm.prompts[3]  # two searches done: the example finishes
    assert answer.text == "Mara Voss" and names(answer) == ["lighthouse.txt"]


def test_an_unreachable_server_ends_the_run_with_its_error(
    kb: KnowledgeBase, settings: Settings
) -> None:
    down = LLMError("lost connection to the LLM at http://127.0.0.1:9/v1: is the server running?")
    with pytest.raises(LLMError, match="lost connection"):
        run_agent(PLAN[0], kb, settings, ScriptedChat(replies=[], error=down))


def test_the_prompts_placeholder_is_never_an_answer(kb: KnowledgeBase, settings: Settings) -> None:
    """A model that copies the example's placeholder gets one retry; its real answer is used."""
    from rag_app.agent.steer import FINISH_PLACEHOLDER

    llm = ScriptedChat(
        replies=[
            plan(PLAN[0]),
            step("search_docs", PLAN[0]),
            step("finish", FINISH_PLACEHOLDER),
            step("finish", "48 metres"),
        ]
    )
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert [s.action for s in answer.steps] == ["search_docs", "finish", "finish"]
    assert answer.steps[1].error and "placeholder" in answer.steps[1].error
    assert answer.text == "48 metres" and not answer.abstained


def test_placeholder_twice_never_reaches_the_user(kb: KnowledgeBase, settings: Settings) -> None:
    llm = ScriptedChat(
        replies=[
            plan(PLAN[0]),
            step("search_docs", PLAN[0]),
            step("finish", "<short answer copied from a passage>"),
            step("finish", "<answer>"),
            '{"answer": "48 metres"}',  # the written answer from the observed passages
        ]
    )
    answer = run_agent(PLAN[0], kb, settings, llm)
    assert "<" not in answer.text and "short answer copied" not in answer.text
    assert answer.text in ("48 metres", ABSTAIN_PHRASE)


def test_is_placeholder_tells_template_text_from_answers() -> None:
    from rag_app.agent.steer import is_placeholder

    for text in (
        "<short answer copied from a passage>",
        "short answer copied from a passage.",
        "<answer>",
        "...",
        "  ",
        "Final answer",
    ):
        assert is_placeholder(text), text
    for text in ("48 metres", "Mara Voss", "1871", "yes"):
        assert not is_placeholder(text), text
