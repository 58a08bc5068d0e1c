"""`rag search` and `rag kb stats` as a user meets them: readable hits, usage errors, --kb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_app.commands.search import HIT_FIELDS, hit_lines, location, search_payload, snippet
from rag_app.records import Chunk, Hit
from tests.unit.test_cli import assert_one_error_line, run_rag

LONG = (
    "The Harrow Point Lighthouse stands on the northern cape above the harbour. " * 4
    + "A spiral stair of 112 steps leads up to the lantern room, where the lamp turns."
)


def hit(text: str, page: int | None = None, headings: tuple[str, ...] = ()) -> Hit:
    chunk = Chunk(
        chunk_id="c1",
        text=text,
        source="/docs/harrow_point_lighthouse.md",
        doc_hash="h",
        page=page,
        headings=list(headings),
        start=0,
        end=len(text),
    )
    return Hit(chunk=chunk, score=0.0325, dense_score=0.61, dense_rank=1, keyword_rank=1)


def test_a_hit_shows_rank_source_section_page_and_snippet_but_no_fused_score() -> None:
    lines = hit_lines(2, hit("The lamp turns.", page=3, headings=("Lighthouse", "Lamp")), "lamp")
    assert lines == [
        "2. /docs/harrow_point_lighthouse.md — Lighthouse > Lamp, page 3",
        "   The lamp turns.",
    ]
    assert "0.03" not in "\n".join(lines) and "score" not in "\n".join(lines)


def test_location_names_only_what_is_known() -> None:
    assert location(hit("x").chunk) == "/docs/harrow_point_lighthouse.md"
    assert location(hit("x", page=4).chunk) == "/docs/harrow_point_lighthouse.md, page 4"


def test_snippet_is_short_and_starts_near_the_query_words() -> None:
    text = snippet(LONG, "steps to the lantern room", limit=120)
    assert len(text) <= 122  # the limit plus the two ellipses
    assert text.startswith("…") and "112 steps" in text
    assert snippet("Short   passage\nhere.", "anything") == "Short passage here."
    assert snippet(LONG, "northern cape", limit=80).startswith("The Harrow Point")


def test_json_keeps_every_score_and_says_what_it_means() -> None:
    payload = search_payload("default", "lamp", [hit("The lamp turns.")])
    first = payload["hits"][0]
    assert first["rank"] == 1 and first["score"] == 0.0325 and first["dense_score"] == 0.61
    assert set(HIT_FIELDS) >= {"rank", "score", "dense_score", "keyword_score"}
    assert "reciprocal-rank fusion" in payload["fields"]["score"]
    json.dumps(payload)  # one JSON document


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_search_is_the_same_usage_error_as_an_empty_question(
    tmp_path: Path, query: str
) -> None:
    searched = run_rag(tmp_path, "search", query)
    asked = run_rag(tmp_path, "ask", query, RAG_LLM_BASE_URL="http://127.0.0.1:9/v1")
    assert_one_error_line(searched, "The query is empty: type what to look for")
    assert searched.returncode == asked.returncode == 1
    assert searched.stdout == ""
    assert not (tmp_path / "data" / "kb").exists()  # nothing was opened or created


@pytest.mark.parametrize("args", [["--kb", "nope"], ["nope"]])
def test_kb_stats_takes_kb_like_every_command_and_the_old_positional(
    tmp_path: Path, args: list[str]
) -> None:
    result = run_rag(tmp_path, "kb", "stats", *args)
    assert_one_error_line(result, "knowledge base nope does not exist")


def test_kb_stats_help_shows_kb_and_refuses_two_different_names(tmp_path: Path) -> None:
    shown = run_rag(tmp_path, "kb", "stats", "--help")
    assert shown.returncode == 0 and "--kb" in shown.stdout and "Deprecated" in shown.stdout
    both = run_rag(tmp_path, "kb", "stats", "one", "--kb", "two")
    assert_one_error_line(both, "disagree")
    assert both.returncode == 2
