"""Golden sets: parsing (CSV/JSONL, bad files refused with a message), storage, quality runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.golden import (
    MAX_ITEMS,
    GoldenItem,
    GoldenSetError,
    load_golden,
    parse_golden,
    save_golden,
    to_csv,
)
from eval.golden_run import by_category, headline, past_runs, run_golden, run_rows
from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_paths
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings, KeyedChat

CSV = (
    "question,expected,source\n"
    "Who built the lighthouse?,Ada Marsh,lighthouse.md\n"
    "How far is the lamp visible?,twenty nautical miles,\n"
)


def test_csv_and_jsonl_parse_to_the_same_items() -> None:
    items = parse_golden("set.csv", CSV.encode())
    assert items == [
        GoldenItem(
            question="Who built the lighthouse?", expected="Ada Marsh", source="lighthouse.md"
        ),
        GoldenItem(question="How far is the lamp visible?", expected="twenty nautical miles"),
    ]
    jsonl = "\n".join(json.dumps(i.model_dump()) for i in items) + "\n"
    assert parse_golden("set.jsonl", jsonl.encode()) == items
    assert parse_golden("again.csv", to_csv(items).encode()) == items


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"  \n\n", "the file is empty"),
        ("cols.csv", b"q,a\nWho?,Ada\n", "needs the columns 'question' and 'expected'"),
        ("cols.jsonl", b'{"q": "Who?", "a": "Ada"}\n', "found: q, a"),
        ("header.csv", b"question,expected\n", "no questions in the file"),
        ("noq.csv", b"question,expected\n,Ada\n", "line 2: question is empty"),
        ("bad.jsonl", b'{"question": "Who?", "expected": "x"}\nnot json\n', "line 2: not a JSON"),
        ("list.jsonl", b'{"question": "Who?", "expected": "x"}\n[1]\n', "line 2: expected a JSON"),
        ("bin.csv", b"\xff\xfe\x00q", "not UTF-8"),
        ("huge.csv", b"question,expected\n" + b"x" * (3 * 1024 * 1024), "larger than 2 MB"),
    ],
)
def test_invalid_files_are_refused_with_a_message(name: str, data: bytes, message: str) -> None:
    with pytest.raises(GoldenSetError, match=message) as err:
        parse_golden(name, data)
    assert str(err.value).startswith(name)


def test_too_many_questions_are_refused() -> None:
    rows = "".join(f"Question {i}?,answer {i}\n" for i in range(MAX_ITEMS + 1))
    with pytest.raises(GoldenSetError, match=f"at most {MAX_ITEMS}"):
        parse_golden("many.csv", ("question,expected\n" + rows).encode())


def test_save_and_load_per_kb(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    items = parse_golden("set.csv", CSV.encode())
    save_golden(settings, "docs", items)
    assert load_golden(settings, "docs") == items
    assert load_golden(settings, "other") == []


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    settings = Settings(data_dir=tmp_path / "data", min_relevance=0.0, top_k=2, answer_gate="off")
    doc = tmp_path / "lighthouse.md"
    doc.write_text(
        "# Lighthouse\n\nThe Blue Harbor lighthouse was built by Ada Marsh in 1887.\n"
        "Its lamp is visible for twenty nautical miles.\n"
    )
    kb = open_kb("docs", settings=settings, create=True, embeddings=HashingEmbeddings())
    assert ingest_paths([doc], kb).added == 1
    return kb


def test_run_scores_each_question_and_keeps_history(kb: KnowledgeBase) -> None:
    items = [
        *parse_golden("set.csv", CSV.encode()),
        GoldenItem(question="Who is the mayor?", expected=""),
    ]
    llm = KeyedChat(
        replies={
            "Who built the lighthouse?": json.dumps({"answer": "Ada Marsh"}),
            "How far is the lamp visible?": json.dumps({"answer": "Ada Marsh"}),
            "Who is the mayor?": json.dumps(
                {"answer": "I don't know based on the provided documents."}
            ),
        }
    )
    seen: list[tuple[int, int]] = []
    summary = run_golden(
        items, kb, kb.settings, llm=llm, concurrency=2, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    assert summary["questions"] == 3 and summary["errors"] == 0
    runs = past_runs(kb.settings, "docs")
    assert len(runs) == 1 and runs[0]["headline"] == summary["headline"]
    rows = run_rows(runs[0]["dir"])
    assert [r["verdict"] for r in rows] == ["right", "wrong", "abstained (right)"]
    assert rows[0]["source_hit"] is True and rows[0]["quote"]
    assert rows[1]["source_hit"] is None  # no expected source given
    figures = summary["headline"]
    assert figures["right"] == pytest.approx(200 / 3)
    assert figures["wrong"] == pytest.approx(100 / 3)
    assert figures["abstained"] == pytest.approx(100 / 3)
    assert figures["source_hit"] == 100.0


def test_headline_counts_tentative_only_when_lenient() -> None:
    rows = [
        {"kind": "tentative", "verdict": "tentative", "right": False, "lenient_right": True},
        {"kind": "confident", "verdict": "right", "right": True, "lenient_right": True},
    ]
    figures = headline(rows)
    assert figures["right"] == 50.0 and figures["lenient_right"] == 100.0
    assert figures["tentative"] == 50.0 and figures["source_hit"] is None


def test_an_optional_type_column_is_kept_and_other_columns_ignored() -> None:
    data = "question,expected,type,evidence\nWho?,Ada,fact,Ada built it.\nMayor?,,unanswerable,\n"
    items = parse_golden("typed.csv", data.encode())
    assert [i.category for i in items] == ["fact", "unanswerable"]
    assert parse_golden("again.csv", to_csv(items).encode()) == items
    assert parse_golden("set.csv", CSV.encode())[0].category == ""  # old files still load


def test_figures_by_category_only_for_typed_sets() -> None:
    rows = [
        {"category": "fact", "kind": "confident", "verdict": "right", "right": True},
        {"category": "fact", "kind": "confident", "verdict": "wrong", "right": False},
        {"category": "unanswerable", "kind": "abstained", "verdict": "abstained (right)"},
    ]
    figures = by_category(rows)
    assert list(figures) == ["fact", "unanswerable"]
    assert figures["fact"]["right"] == 50.0 and figures["fact"]["wrong"] == 50.0
    assert figures["unanswerable"]["abstained"] == 100.0
    assert by_category([{"kind": "confident"}]) == {}


def test_a_run_of_a_typed_set_reports_each_type(kb: KnowledgeBase) -> None:
    items = [
        GoldenItem(question="Who built the lighthouse?", expected="Ada Marsh", category="fact"),
        GoldenItem(question="Who is the mayor?", category="unanswerable"),
    ]
    llm = KeyedChat(
        replies={
            "Who built the lighthouse?": json.dumps({"answer": "Ada Marsh"}),
            "Who is the mayor?": json.dumps(
                {"answer": "I don't know based on the provided documents."}
            ),
        }
    )
    summary = run_golden(items, kb, kb.settings, llm=llm, concurrency=1)
    assert [r["category"] for r in run_rows(past_runs(kb.settings, "docs")[0]["dir"])] == [
        "fact",
        "unanswerable",
    ]
    assert summary["by_category"]["fact"]["right"] == 100.0
    assert summary["by_category"]["unanswerable"]["abstained"] == 100.0


def _rag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"})
    return subprocess.run(
        [sys.executable, "-m", "rag_app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


def test_cli_refuses_an_invalid_golden_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("q,a\nWho?,Ada\n")
    for args, needle in [
        (("--kb", "docs", "--golden", str(bad)), "bad.csv: needs the columns 'question'"),
        ((), "give --dataset FILE, or --golden FILE --kb NAME"),
    ]:
        result = _rag(tmp_path, "eval", "run", *args)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
        assert needle in result.stderr
