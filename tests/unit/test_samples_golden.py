"""The shipped golden set (samples/golden.csv): loads through the real loader, covers every
question type, and every gold answer is checked against the documents' extracted text."""

from __future__ import annotations

import ast
import csv
import operator
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from eval.golden import read_golden_file
from ingest.load import parse_bytes, read_bytes

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
GOLDEN = SAMPLES / "golden.csv"
MINIMUM = {"fact": 30, "unanswerable": 6, "two-hop": 4, "comparison": 3, "arithmetic": 3}
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


@cache
def doc_text(name: str) -> str:
    """A sample document's text as ingestion extracts it (whitespace folded, lowercased)."""
    path = SAMPLES / "docs" / name
    assert path.is_file(), f"golden set names a missing document: {name}"
    return _flat(parse_bytes(name, path.suffix, read_bytes(path, 50)).text)


def raw_rows() -> list[dict[str, str]]:
    with GOLDEN.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def calculate(expression: str) -> float:
    """+, - and * over numbers only (the calc column), without eval."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"calc may use only numbers and + - *: {expression!r}")

    return walk(ast.parse(expression, mode="eval").body)


def test_the_set_loads_through_the_real_loader_with_every_type() -> None:
    items = read_golden_file(GOLDEN)
    counts = Counter(item.category for item in items)
    assert set(counts) == set(MINIMUM)
    for category, least in MINIMUM.items():
        assert counts[category] >= least, (category, counts)
    assert len(items) >= 36
    assert all((item.expected == "") == (item.category == "unanswerable") for item in items)
    steps = "How many steps lead to the top of the Harrow Point Lighthouse?"
    assert any(i.question == steps and i.expected == "214" for i in items)


def test_facts_are_asked_several_ways_and_questions_are_unique() -> None:
    items = read_golden_file(GOLDEN)
    assert len({_flat(i.question) for i in items}) == len(items)
    asked = Counter((i.source, i.expected) for i in items if i.category == "fact")
    assert sum(1 for n in asked.values() if n >= 2) >= 12
    assert {i.source for i in items if i.source} == {p.name for p in (SAMPLES / "docs").iterdir()}


@pytest.mark.parametrize("row", raw_rows(), ids=lambda r: r["question"][:40])
def test_every_gold_answer_is_in_the_named_document(row: dict[str, str]) -> None:
    quotes = [(row["source"], row["evidence"]), (row["source_2"], row["evidence_2"])]
    quotes = [(name, quote) for name, quote in quotes if quote]
    if row["type"] == "unanswerable":
        assert not row["source"] and not quotes
        return
    assert quotes, "an answerable question needs the sentence it rests on (evidence)"
    for name, quote in quotes:
        assert _flat(quote) in doc_text(name), f"not in {name}: {quote!r}"
    if row["type"] != "arithmetic":
        assert _flat(row["expected"]) in doc_text(row["source"])
        return
    numbers = re.findall(r"\d+(?:\.\d+)?", row["calc"])
    assert len(numbers) >= 2
    quoted = " ".join(_flat(q) for _, q in quotes)
    for number in numbers:  # each input of the sum is a number the documents state
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", quoted), number
    assert calculate(row["calc"]) == float(row["expected"])


def test_the_benchmark_counts_answers_per_type() -> None:
    from bench.golden_samples import type_rows

    rows = [
        {"category": "fact", "expected": "214", "kind": "confident", "right": True},
        {"category": "fact", "expected": "38", "kind": "confident", "right": False},
        {"category": "fact", "expected": "1874", "kind": "tentative", "lenient_right": True},
        {"category": "unanswerable", "expected": "", "kind": "abstained", "right": True},
        {"category": "unanswerable", "expected": "", "kind": "confident", "right": False},
    ]
    fact, unanswerable, total = type_rows(rows)
    assert fact == {
        "type": "fact",
        "questions": 3,
        "confident": 2,
        "confident right": 1,
        "tentative right": 1,
        "abstained": 0,
        "wrong confident": 1,
        "errors": 0,
        "precision %": 50.0,
        "coverage %": pytest.approx(100 / 3),
    }
    assert unanswerable["abstained"] == 1 and unanswerable["wrong confident"] == 1
    assert unanswerable["coverage %"] is None
    assert total["type"] == "all" and total["questions"] == 5
    assert total["precision %"] == pytest.approx(100 / 3)
