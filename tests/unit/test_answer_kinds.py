"""Answer kinds: the gate makes a grounded span confident, tentative (with its quote) or
abstained; the CLI prints one labelled verdict that cannot be misread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_texts
from rag_app.answering.gate import (
    GateModel,
    decide_kind,
    question_type,
    read_gate,
    span_type,
    type_agreement,
)
from rag_app.errors import ConfigError
from rag_app.pipeline import ask
from rag_app.records import Answer
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

DOCS = [
    ("lighthouse.txt", "The Harbor Point Lighthouse was built by Elena Marsh. "
     "It was completed in 1887 after four years of work."),
    ("bakery.txt", "The Old Mill Bakery sells rye bread. It opened in 1952 on Canal Street."),
]  # fmt: skip
QUESTION = "Who built the lighthouse?"


def write_gate(path: Path, intercept: float, answer_at: float, tentative_at: float) -> Path:
    """A gate whose P(right) is sigmoid(intercept) whatever the signals (one dummy feature)."""
    gate = {
        "name": "test", "features": ["support"], "mean": [0.0], "scale": [1.0], "coef": [0.0],
        "intercept": intercept, "answer_at": answer_at, "tentative_at": tentative_at,
    }  # fmt: skip
    path.write_text(json.dumps(gate))
    return path


def make_kb(tmp_path: Path, gate: Path) -> KnowledgeBase:
    settings = Settings(
        data_dir=tmp_path / "data", min_relevance=0.0, top_k=2, answer_gate=str(gate)
    )
    base = open_kb("t", settings=settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS, base)
    return base


def answer_with(tmp_path: Path, intercept: float) -> Answer:
    kb = make_kb(tmp_path, write_gate(tmp_path / "gate.json", intercept, 0.8, 0.3))
    llm = FakeListChatModel(responses=['{"answer": "Elena Marsh"}'])
    return ask(QUESTION, kb, settings=kb.settings, llm=llm)


def test_a_likely_right_span_is_confident(tmp_path: Path) -> None:
    answer = answer_with(tmp_path, intercept=3.0)  # p = 0.95
    assert answer.kind == "confident" and not answer.abstained
    assert answer.text == "Elena Marsh" and answer.display_text() == "Elena Marsh"
    assert answer.p_correct == pytest.approx(0.9526, abs=1e-3)
    assert set(answer.signals) >= {"logp_mean", "q_in_sentence", "type_agreement", "support"}


def test_an_unsure_grounded_span_is_tentative_with_its_quote_and_offsets(tmp_path: Path) -> None:
    answer = answer_with(tmp_path, intercept=0.0)  # p = 0.5
    assert answer.kind == "tentative" and not answer.abstained
    assert answer.display_text() == "Probably Elena Marsh (not verified)"
    quote = answer.citations[0]
    assert quote.quote == "The Harbor Point Lighthouse was built by Elena Marsh."
    source_text = DOCS[0][1]
    assert quote.start is not None and quote.end is not None
    assert source_text[quote.start : quote.end] == quote.quote  # offsets into the document
    assert "Not verified" in answer.message


def test_a_model_that_is_never_confident_says_why_beside_a_high_p(tmp_path: Path) -> None:
    kb = make_kb(tmp_path, write_gate(tmp_path / "gate.json", 3.0, 1.0, 0.3))  # p = 0.95
    llm = FakeListChatModel(responses=['{"answer": "Elena Marsh"}'])
    answer = ask(QUESTION, kb, settings=kb.settings, llm=llm)
    assert answer.kind == "tentative" and answer.p_correct == pytest.approx(0.9526, abs=1e-3)
    assert "never marks an answer confident" in answer.message
    # a gate that can say confident adds no such note to its tentative answers
    (tmp_path / "other").mkdir()
    assert "never marks" not in answer_with(tmp_path / "other", intercept=0.0).message


def test_an_unlikely_span_abstains_and_names_the_guess(tmp_path: Path) -> None:
    answer = answer_with(tmp_path, intercept=-3.0)  # p = 0.05
    assert answer.kind == "abstained" and answer.abstained and not answer.citations
    assert "'Elena Marsh'" in answer.message and answer.p_correct is not None


def test_kind_and_abstained_never_disagree() -> None:
    with pytest.raises(ValueError):
        Answer(question="q", standalone_question="q", text="x", abstained=True, kind="confident",
               mode="direct", prompt_name="qa")  # fmt: skip
    legacy = Answer(question="q", standalone_question="q", text="x", abstained=True,
                    mode="direct", prompt_name="qa")  # fmt: skip
    assert legacy.kind == "abstained"


def test_thresholds_split_the_probability_range() -> None:
    assert decide_kind(0.9, 0.8, 0.3) == "confident"
    assert decide_kind(0.5, 0.8, 0.3) == "tentative"
    assert decide_kind(0.1, 0.8, 0.3) == "abstained"


def test_gate_probability_is_a_standardised_logistic() -> None:
    gate = GateModel("g", ["a", "b"], [1.0, 0.0], [2.0, 1.0], [1.0, -1.0], 0.0, 0.5, 0.2, {})
    assert gate.p_correct({"a": 1.0, "b": 0.0}) == pytest.approx(0.5)
    assert gate.p_correct({"a": 5.0, "b": 0.0}) > 0.85  # (5-1)/2 = 2 standard deviations
    assert gate.p_correct({"a": 1.0, "b": 3.0}) < 0.1


def test_a_broken_gate_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "gate.json"
    bad.write_text('{"name": "x"}')
    with pytest.raises(ConfigError, match="not a valid answer-gate file"):
        read_gate(bad)


@pytest.mark.parametrize(
    ("question", "span", "agreement"),
    [
        ("Who built the Harrow Point Lighthouse?", "Margaret Ellery", 1.0),
        ("When was it completed?", "1887", 1.0),
        ("How many steps lead up?", "112", 1.0),
        ("How many steps lead up?", "Margaret Ellery", -1.0),
        ("Who designed it?", "in 1887", -1.0),
        ("What colour is the tower?", "white", 0.0),
    ],
)
def test_answer_type_agreement(question: str, span: str, agreement: float) -> None:
    assert type_agreement(question, span) == agreement


def test_question_and_span_types() -> None:
    assert question_type("In what year did it open?") == "date"
    assert question_type("Where is the ferry based?") == "place"
    assert span_type("March 1902") == "date" and span_type("twelve arches") == "number"


def test_cli_prints_one_labelled_verdict_for_each_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag_app.commands.answering import stream_to_terminal

    for intercept, label in ((3.0, "Answer: Elena Marsh"),
                             (0.0, "Tentative answer: Probably Elena Marsh (not verified)"),
                             (-3.0, "No answer: I don't know")):  # fmt: skip
        folder = tmp_path / str(intercept)
        folder.mkdir()
        kb = make_kb(folder, write_gate(folder / "gate.json", intercept, 0.8, 0.3))
        llm = FakeListChatModel(responses=['{"answer": "Elena Marsh"}'])
        stream_to_terminal(QUESTION, kb, "direct", [], kb.settings, llm)
        printed = capsys.readouterr().out
        lines = printed.splitlines()
        assert lines[0].startswith("Draft (unverified): ")  # the model's words, labelled
        assert any(line.startswith(label) for line in lines), printed
        verdicts = [
            ln for ln in lines if ln.split(":")[0] in ("Answer", "Tentative answer", "No answer")
        ]
        assert len(verdicts) == 1, printed  # exactly one verdict: nothing to misread
        if label.startswith("Tentative"):
            assert "The Harbor Point Lighthouse was built by Elena Marsh." in printed


def test_a_miss_over_one_sentence_is_retried_over_a_wider_focus(tmp_path: Path) -> None:
    kb = make_kb(tmp_path, write_gate(tmp_path / "gate.json", 3.0, 0.8, 0.3))
    abstain = json.dumps({"answer": "I don't know based on the provided documents."})
    llm = FakeListChatModel(responses=[abstain, '{"answer": "Elena Marsh"}'])
    answer = ask(QUESTION, kb, settings=kb.settings, llm=llm)
    assert answer.text == "Elena Marsh" and answer.kind == "confident"
    assert answer.signals["widened"] == 1.0


def test_cli_labels_the_second_draft_of_a_widened_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag_app.commands.answering import stream_to_terminal

    kb = make_kb(tmp_path, write_gate(tmp_path / "gate.json", 3.0, 0.8, 0.3))
    abstain = json.dumps({"answer": "I don't know based on the provided documents."})
    llm = FakeListChatModel(responses=[abstain, '{"answer": "Elena Marsh"}'])
    stream_to_terminal(QUESTION, kb, "direct", [], kb.settings, llm)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Draft (unverified): I don't know")
    assert lines[1] == "Draft (unverified, wider context): Elena Marsh", lines
    assert "Answer: Elena Marsh" in lines


def test_a_gate_abstention_is_not_retried(tmp_path: Path) -> None:
    kb = make_kb(tmp_path, write_gate(tmp_path / "gate.json", -3.0, 0.8, 0.3))
    llm = FakeListChatModel(responses=['{"answer": "Elena Marsh"}', '{"answer": "1887"}'])
    answer = ask(QUESTION, kb, settings=kb.settings, llm=llm)
    assert answer.kind == "abstained" and "'Elena Marsh'" in answer.message
    assert answer.signals["widened"] == 0.0
