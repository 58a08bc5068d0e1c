"""Quality page through AppTest (scripted model, fake embeddings): import, evaluate, drafts."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from streamlit.testing.v1 import AppTest

from eval.golden import GoldenSetError, load_golden
from eval.golden_draft import parse_candidate
from ingest.kb import open_kb
from ingest.pipeline import ingest_paths
from rag_app.settings import Settings
from rag_app.ui.quality import rows_to_items
from tests.fakes import HashingEmbeddings, KeyedChat

APP = Path(__file__).resolve().parents[2] / "rag_app" / "ui" / "app.py"
DOC = (
    "# Lighthouse\n\nThe Blue Harbor lighthouse was built by Ada Marsh in 1887 on the rocks of "
    "the northern cape.\nIts lamp is visible for twenty nautical miles on a clear night.\n"
)
GOLDEN = (
    b"question,expected,source\n"
    b"Who built the Blue Harbor lighthouse?,Ada Marsh,lighthouse.md\n"
    b"When was it built?,1887,\n"
    b"Who is the mayor?,,\n"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", min_relevance=0.0, top_k=2, answer_gate="off")
    doc = tmp_path / "lighthouse.md"
    doc.write_text(DOC)
    other = tmp_path / "orchard.md"
    other.write_text(
        "# Orchard\n\nThe Greywater Community Orchard has eighty apple trees and twelve pear "
        "trees, planted by volunteers in the winter of 2009.\n"
    )
    kb = open_kb(settings.kb, settings=settings, create=True, embeddings=HashingEmbeddings())
    assert ingest_paths([doc, other], kb).added == 2
    kb.close()
    return settings


def quality_page(settings: Settings, replies: list[str] | dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["settings"] = settings
    at.session_state["embeddings"] = HashingEmbeddings()
    at.session_state["llm"] = (
        KeyedChat(replies=replies)
        if isinstance(replies, dict)
        else FakeListChatModel(responses=replies)
    )
    at.run()
    return at.switch_page("views/quality.py").run()


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def notices(at: AppTest) -> tuple[list[str], list[str]]:
    return [unescape(s.value) for s in at.main.success], [unescape(e.value) for e in at.main.error]


def test_invalid_import_is_refused_and_a_valid_one_replaces_the_set(settings: Settings) -> None:
    at = quality_page(settings, ["unused"])
    assert not at.exception
    at.file_uploader[0].upload("bad.csv", b"q,a\nWho?,Ada\n", "text/csv").run()
    _, errors = notices(at)
    assert any("Import refused: bad.csv: needs the columns" in e for e in errors), errors
    assert load_golden(settings, "default") == []
    at.file_uploader[0].upload("set.csv", GOLDEN, "text/csv").run()
    ok, _ = notices(at)
    assert any("Imported 3 questions from set.csv" in s for s in ok), ok
    assert len(load_golden(settings, "default")) == 3
    assert any("3 questions" in m.value for m in at.markdown)


def test_evaluate_runs_in_background_then_shows_results_and_chart(settings: Settings) -> None:
    replies = {
        "Who built the Blue Harbor lighthouse?": json.dumps({"answer": "Ada Marsh"}),
        "When was it built?": json.dumps({"answer": "in 1887"}),
        "Who is the mayor?": json.dumps(
            {"answer": "I don't know based on the provided documents."}
        ),
    }
    at = quality_page(settings, replies)
    at.file_uploader[0].upload("set.csv", GOLDEN, "text/csv").run()
    at.button(key="evaluate").click().run()
    assert not at.exception
    deadline = time.monotonic() + 120
    while not any("Evaluated 3 questions" in s for s in notices(at)[0]):
        assert time.monotonic() < deadline, notices(at)
        time.sleep(0.3)
        at.run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert list(table["Verdict"]) == ["right", "right", "abstained (right)"]
    assert "Ada Marsh" in table.iloc[0]["Quote"]
    assert list(table["Source cited"]) == ["yes", "—", "—"], table.to_dict("records")
    metrics = {unescape(m.label): m.value for m in at.metric}
    assert metrics["Right"] == "100.0" and metrics["Abstained"] == "33.3"
    assert all(m.help for m in at.metric), "each short label has its full meaning as a tooltip"
    charts = at.get("vega_lite_chart")
    assert charts, "the trend chart is drawn"
    spec = charts[0].proto.spec + "".join(
        d.data.data.decode("latin-1") for d in charts[0].proto.datasets
    )
    assert "Right" in spec and '"bar"' in spec  # one run: a bar per figure, none hidden


def test_drafted_questions_can_be_accepted_or_dropped(settings: Settings) -> None:
    drafts = [
        json.dumps({"question": "Who built the lighthouse?", "answer": "Ada Marsh"}),
        json.dumps({"question": "How far is the lamp visible?", "answer": "twenty miles"}),
    ]
    at = quality_page(settings, drafts)
    at.number_input(key="draft-n").set_value(2)
    at.button(key="draft-go").click().run()
    assert not at.exception
    questions = [t.value for t in at.text_input if t.label == "Question"]
    assert sorted(questions) == ["How far is the lamp visible?", "Who built the lighthouse?"]
    first = [t for t in at.text_input if t.label == "Question"][0]
    first.set_value("Who designed the lighthouse?").run()  # edited before accepting
    at.button(key="draft-accept-0").click().run()
    assert [i.question for i in load_golden(settings, "default")] == [
        "Who designed the lighthouse?"
    ]
    assert load_golden(settings, "default")[0].source in {"lighthouse.md", "orchard.md"}
    at.button(key="draft-drop-0").click().run()
    assert not [t for t in at.text_input if t.label == "Question"]
    assert len(load_golden(settings, "default")) == 1


def test_page_without_documents_points_to_documents_page(tmp_path: Path) -> None:
    at = quality_page(Settings(data_dir=tmp_path / "none"), ["unused"])
    assert not at.exception
    assert any("Documents page" in i.value for i in at.info)


def test_editor_rows_become_items_and_blank_questions_are_refused() -> None:
    rows = [
        {"question": "Who?", "expected": "Ada", "source": None},
        {"question": "", "expected": "", "source": ""},
    ]
    assert [i.question for i in rows_to_items(rows)] == ["Who?"]
    with pytest.raises(GoldenSetError, match="row 1: the question is empty"):
        rows_to_items([{"question": "", "expected": "Ada"}])


@pytest.mark.parametrize(
    ("reply", "parsed"),
    [
        ('{"question": "Who built it?", "answer": "Ada"}', ("Who built it?", "Ada")),
        ('Sure! {"question": "When?", "answer": "1887"} done', ("When?", "1887")),
        ('{"question": "Not a question", "answer": "x"}', None),
        ('{"question": "Who?", "answer": ""}', None),
        ("no json at all", None),
    ],
)
def test_draft_replies_are_parsed_as_data(reply: str, parsed: tuple[str, str] | None) -> None:
    assert parse_candidate(reply) == parsed
