"""Golden sets: a knowledge base's own test questions (question, expected answer, source?, type?).

A user writes them in the UI or imports a CSV/JSONL file; they live beside the KB's quality
runs in `<data_dir>/quality/<kb>/golden.jsonl` (written atomically), or with store = postgres in
the shared database (eval/pg_quality.py). A file that is not a valid
golden set is refused as a whole, with one line naming the file, the line and what to fix: a
half-imported set would make every later figure quietly wrong.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eval.runner import write_atomic
from ingest.pg_db import in_database
from rag_app.errors import ConfigError
from rag_app.settings import Settings

MAX_BYTES = 2 * 1024 * 1024
MAX_ITEMS = 500
QUESTION_COLUMNS = ("question",)
EXPECTED_COLUMNS = ("expected", "expected_answer", "answer")
SOURCE_COLUMNS = ("source", "expected_source")
CATEGORY_COLUMNS = ("category", "type")  # other columns (notes, evidence) are ignored


class GoldenItem(BaseModel):
    """One test question. An empty `expected` means: the documents do not say (abstain)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(min_length=1, max_length=1000)
    expected: str = Field(default="", max_length=1000)
    source: str = Field(default="", max_length=500, description="File name of the source.")
    category: str = Field(
        default="",
        max_length=40,
        description="Question type (fact, two-hop, unanswerable...); runs report figures by it.",
    )

    @field_validator("question", "expected", "source", "category", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return " ".join(value.split()) if isinstance(value, str) else value


class GoldenSetError(ConfigError):
    """A golden-set file that cannot be used; the message names the file and the fix."""


def quality_dir(settings: Settings, kb: str) -> Path:
    return settings.root / "quality" / kb


def golden_path(settings: Settings, kb: str) -> Path:
    return quality_dir(settings, kb) / "golden.jsonl"


def load_golden(settings: Settings, kb: str) -> list[GoldenItem]:
    if in_database(settings):
        from eval.pg_quality import read_golden_items

        return [GoldenItem.model_validate(item) for item in read_golden_items(settings, kb)]
    path = golden_path(settings, kb)
    if not path.is_file():
        return []
    return parse_golden(path.name, path.read_bytes())


def save_golden(settings: Settings, kb: str, items: list[GoldenItem]) -> None:
    if in_database(settings):
        from eval.pg_quality import write_golden_items

        write_golden_items(settings, kb, [item.model_dump() for item in items])
        return
    path = golden_path(settings, kb)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(item.model_dump_json() + "\n" for item in items))


def read_golden_file(path: Path) -> list[GoldenItem]:
    """A golden-set file from disk (the CLI's --golden)."""
    if not path.is_file():
        raise GoldenSetError(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise GoldenSetError(f"{path.name}: larger than {MAX_BYTES // 1024 // 1024} MB")
    return parse_golden(path.name, path.read_bytes())


def parse_golden(name: str, data: bytes) -> list[GoldenItem]:
    """CSV (header row) or JSONL (one object a line) -> items; GoldenSetError when not valid."""
    if len(data) > MAX_BYTES:
        raise GoldenSetError(f"{name}: larger than {MAX_BYTES // 1024 // 1024} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GoldenSetError(f"{name}: not UTF-8 text ({exc.reason})") from exc
    if not text.strip():
        raise GoldenSetError(f"{name}: the file is empty")
    is_jsonl = name.lower().endswith((".jsonl", ".json")) or text.lstrip().startswith("{")
    rows = _jsonl_rows(name, text) if is_jsonl else _csv_rows(name, text)
    if not rows:
        raise GoldenSetError(f"{name}: no questions in the file")
    if len(rows) > MAX_ITEMS:
        raise GoldenSetError(f"{name}: {len(rows)} questions; at most {MAX_ITEMS} per set")
    return [_item(name, line, row) for line, row in rows]


def _pick(row: dict[str, object], names: tuple[str, ...]) -> object:
    return next((row[n] for n in names if row.get(n) not in (None, "")), "")


def _item(name: str, line: int, row: dict[str, object]) -> GoldenItem:
    row = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    try:
        return GoldenItem(
            question=_pick(row, QUESTION_COLUMNS),  # type: ignore[arg-type]
            expected=_pick(row, EXPECTED_COLUMNS),  # type: ignore[arg-type]
            source=_pick(row, SOURCE_COLUMNS),  # type: ignore[arg-type]
            category=_pick(row, CATEGORY_COLUMNS),  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = err["loc"][0] if err["loc"] else "row"
        what = "is empty" if err["type"] == "string_too_short" else err["msg"].lower()
        raise GoldenSetError(f"{name}: line {line}: {field} {what}") from exc


def _check_columns(name: str, columns: list[str]) -> None:
    found = {c.strip().lower() for c in columns}
    if not found & set(QUESTION_COLUMNS) or not found & set(EXPECTED_COLUMNS):
        shown = ", ".join(columns) or "none"
        raise GoldenSetError(
            f"{name}: needs the columns 'question' and 'expected' (optional: 'source', 'type'); "
            f"found: {shown}"
        )


def _csv_rows(name: str, text: str) -> list[tuple[int, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(text))
    _check_columns(name, list(reader.fieldnames or []))
    try:
        return [(n, dict(row)) for n, row in enumerate(reader, start=2) if any(row.values())]
    except csv.Error as exc:
        raise GoldenSetError(f"{name}: not valid CSV ({exc})") from exc


def _jsonl_rows(name: str, text: str) -> list[tuple[int, dict[str, object]]]:
    rows: list[tuple[int, dict[str, object]]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldenSetError(f"{name}: line {n}: not a JSON object ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise GoldenSetError(f"{name}: line {n}: expected a JSON object")
        if not rows:
            _check_columns(name, list(row))
        rows.append((n, row))
    return rows


def to_csv(items: list[GoldenItem]) -> str:
    """The set as CSV (the import format), for download."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["question", "expected", "source", "category"])
    writer.writeheader()
    writer.writerows(item.model_dump() for item in items)
    return out.getvalue()
