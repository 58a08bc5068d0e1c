"""Agent tools: the safe calculator, the knowledge-base tools and their prompt descriptions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag_app
from ingest.kb import open_kb
from ingest.pipeline import ingest_texts
from rag_app.agent.tools import (
    TOOLS,
    ToolContext,
    ToolError,
    describe_tools,
    evaluate_arithmetic,
    excerpt,
    run_tool,
)
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(1200 + 800) / 2", "1000"),
        ("1,200 + 800", "2000"),
        ("-3 ** 2", "-9"),
        ("7 // 2 + 7 % 2", "4"),
        ("round(2 / 3, 2)", "0.67"),
        ("max(3, 9) - min(4, 1) + abs(-2)", "10"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** 0.5", "1.41421"),
    ],
)
def test_calculator_computes_arithmetic(expression: str, expected: str) -> None:
    ctx = ToolContext(kb=None, settings=Settings())  # type: ignore[arg-type]
    assert run_tool(ctx, "calculator", expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('x')",
        "open('/etc/passwd').read()",
        "(1).__class__.__bases__",
        "[x for x in range(10)]",
        "lambda: 1",
        "a + 1",
        "'ab' * 3",
        "2 ** 100000",
        "10 ** 99 * 10 ** 99",
        "(-8) ** 0.5",
        "1 / 0",
        "round(x=1)",
        "1 +",
        "",
    ],
)
def test_calculator_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ToolError, match="calculator"):
        evaluate_arithmetic(expression)
    ctx = ToolContext(kb=None, settings=Settings())  # type: ignore[arg-type]
    assert run_tool(ctx, "calculator", expression).startswith("Error: calculator")


def test_no_eval_or_exec_in_the_package() -> None:
    for path in Path(rag_app.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile"}, f"{path}:{node.lineno}"


def test_tool_descriptions_come_from_docstrings() -> None:
    described = {d["name"]: d for d in describe_tools()}
    assert set(described) == set(TOOLS)
    assert described["search_docs"]["signature"] == "search_docs(query)"
    assert described["list_sources"]["signature"] == "list_sources()"
    assert described["calculator"]["description"].startswith("Compute arithmetic")


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ToolContext]:
    kb = open_kb("tools", settings=settings, create=True, embeddings=HashingEmbeddings())
    docs = [("a.txt", "Alpha tower is 48 metres tall."), ("b.txt", "Beta bridge spans 130 metres.")]
    ingest_texts(docs, kb)
    yield ToolContext(kb=kb, settings=settings)
    kb.close()


def test_search_read_and_list(ctx: ToolContext) -> None:
    found = run_tool(ctx, "search_docs", "How tall is Alpha tower?")
    assert found.startswith("[1] chunk_id=") and "48 metres" in found
    first_id = next(iter(ctx.seen))
    by_number = run_tool(ctx, "read_source", "[1]")
    assert by_number == run_tool(ctx, "read_source", first_id)
    assert by_number == run_tool(ctx, "read_source", f"chunk_id={first_id}")
    assert run_tool(ctx, "read_source", "nope").startswith("Error: No passage with chunk_id")
    listed = run_tool(ctx, "list_sources", "")
    assert "a.txt (1 passages)" in listed and "b.txt" in listed
    assert run_tool(ctx, "search_docs", "  ").startswith("Error: search_docs needs")
    assert run_tool(ctx, "shell", "ls").startswith("Error: unknown tool")


def test_excerpt_keeps_the_sentences_about_the_query() -> None:
    text = "Filler sentence one. The tower is 48 metres tall. Another filler sentence here."
    cut = excerpt(text, "how tall is the tower", 40)
    assert "48 metres" in cut and len(cut) <= 40
