"""Agent mode end to end: real vLLM server, real MiniLM, the sample documents."""

from __future__ import annotations

import json

import pytest

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_paths
from rag_app.agent.tools import TOOLS
from rag_app.pipeline import ask
from rag_app.records import ABSTAIN_PHRASE, Answer
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, SAMPLES_DIR

pytestmark = pytest.mark.integration
QUESTIONS = {
    q["id"]: q for q in json.loads((REPO_ROOT / "tests/sample_questions.json").read_text())
}
# The sentence of each gold passage that holds the fact the two-hop question needs.
GOLD_FACTS = {"kestrel_bridge.txt": "412 metres", "alder_viaduct.html": "275 metres"}


@pytest.fixture(scope="module")
def agent_answer(tmp_path_factory: pytest.TempPathFactory, vllm_server: str) -> Answer:
    """ONE agent run over the samples, shared by the tests below (LLM calls are the slow part)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("agent-data"), llm_base_url=vllm_server)
    kb: KnowledgeBase = open_kb("samples", settings=settings, create=True)
    assert ingest_paths([SAMPLES_DIR], kb).added >= 5
    question = QUESTIONS["bridge_minus_viaduct"]["question"]
    return ask(question, kb, mode="agent", settings=settings)


def test_agent_run_completes_and_every_step_parses(agent_answer: Answer) -> None:
    answer = agent_answer
    assert answer.mode == "agent" and answer.plan and answer.steps
    for step in answer.steps:
        assert step.action in {*TOOLS, "finish"}, (step.action, step.error, step.action_input)
        # recorded refusals the loop recovers from: a repeat, or the prompt's placeholder text
        allowed = ("repeated", "finish input was the prompt's placeholder")
        assert step.error is None or step.error.startswith(allowed), step.error
        assert step.seconds > 0 and step.usage.completion_tokens > 0
    assert answer.usage.prompt_tokens > 0 and answer.timings.total_s > 0
    if answer.abstained:
        assert answer.text == ABSTAIN_PHRASE and not answer.citations
    else:  # whatever it answered is cited from what its tools returned
        seen = {h.chunk.chunk_id for h in answer.hits}
        assert answer.citations and {c.chunk_id for c in answer.citations} <= seen
    json.dumps(answer.model_dump(mode="json"))  # the full trace serialises for --json


def test_agent_trace_has_a_search_that_found_the_gold_passage(agent_answer: Answer) -> None:
    searches = [s for s in agent_answer.steps if s.action == "search_docs"]
    assert searches, [s.action for s in agent_answer.steps]
    found = [
        source
        for s in searches
        for source, fact in GOLD_FACTS.items()
        if f"source={source}" in s.observation and fact in s.observation
    ]
    assert found, [s.observation[:300] for s in searches]
