"""The whole eval flow with fakes: KB of the dataset's documents, ask(), rows, report, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from eval.compare import compare_runs, format_compare
from eval.judge import OfflineJudge
from eval.report import question_type, write_report
from eval.run_eval import run_eval
from eval.runner import RunConfig, read_rows
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

ROWS = [
    {
        "id": "a",
        "question": "Who led the Normans?",
        "answers": ["Rollo"],
        "context": "The Normans were led by Rollo, a Norse chieftain.",
        "source": "normans",
    },
    {
        "id": "b",
        "question": "When was the treaty signed?",
        "answers": ["911", "in 911"],
        "context": "The treaty of Saint-Clair-sur-Epte was signed in 911.",
        "source": "treaty",
    },
    {"id": "c", "question": "What colour was Rollo's horse?", "answers": [], "source": "normans"},
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    return path


def _run(dataset: Path, settings: Settings, out: Path, replies: list[str]) -> dict:
    config = RunConfig(dataset=str(dataset), format="jsonl")
    emb = HashingEmbeddings()
    return run_eval(
        config,
        out,
        settings,
        concurrency=1,
        judge=OfflineJudge(emb),
        llm=FakeListChatModel(responses=replies),
        show_progress=False,
        embeddings=emb,
    )


def test_run_report_compare(dataset: Path, tmp_path: Path) -> None:
    # Whole passages (context_sentences=0): one model reply per question, no wider second try.
    settings = Settings(data_dir=tmp_path / "data", min_relevance=0.0, context_sentences=0)
    good = ['{"answer": "Rollo"}', '{"answer": "911"}', '{"answer": "a grey horse"}']
    bad = ['{"answer": "Charlemagne"}', '{"answer": "911"}', '{"answer": "a grey horse"}']
    run_a = _run(dataset, settings, tmp_path / "a", good)
    assert run_a["questions"] == 3 and run_a["errors"] == 0, read_rows(tmp_path / "a")
    rows = {r["id"]: r for r in read_rows(tmp_path / "a")}
    assert rows["a"]["scores"]["exact"] == 1.0
    assert rows["a"]["scores"]["recall@1"] == 1.0  # the gold passage was indexed and retrieved
    # "a grey horse" is in no passage: ask() abstains, which is right for an unanswerable question.
    assert rows["c"]["abstained"] and rows["c"]["scores"]["exact"] == 1.0
    assert rows["a"]["scores"]["claims"][0]["gold"] == "supported"
    assert run_a["factuality"]["factual_precision"] == 1.0
    assert run_a["answer"]["HasAns_exact"] == 100.0
    # The KB was built once from the dataset's own documents and is reused by the next run.
    run_b = _run(dataset, settings, tmp_path / "b", bad)
    assert run_b["answer"]["HasAns_exact"] == 50.0
    report = write_report(tmp_path / "a")
    text = report.read_text()
    assert "HasAns_exact" in text and "latency.png" in text
    assert (tmp_path / "a" / "f1_by_type.png").stat().st_size > 1000
    result = compare_runs(tmp_path / "a", tmp_path / "b", samples=200)
    f1 = next(d for d in result["deltas"] if d["metric"] == "f1")
    assert f1["delta"] == pytest.approx(-1 / 3)
    assert [e["id"] for e in result["flipped"]["worse_in_b"]] == ["a"]
    assert "Right in A, wrong in B (1)" in format_compare(result)


def test_question_type() -> None:
    assert question_type("In what country is Normandy?") == "what"
    assert question_type("Whose horse was it?") == "who"
    assert question_type("Name the king.") == "other"
