"""Docs: write README's settings table from the Settings field descriptions (or --check it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from rag_app.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def default_text(name: str) -> str:
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if name == "llm_api_key":
        return '`"EMPTY"`'
    return f"`{json.dumps(value, default=str)}`"


def settings_table() -> str:
    rows = ["| setting (env var) | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` (`RAG_{name.upper()}`) | {default_text(name)} | {description} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text()
    if START not in text or END not in text:
        print(f"{README} lacks the {START} / {END} markers", file=sys.stderr)
        return 1
    updated = with_table(text)
    if "--write" in argv:
        README.write_text(updated)
        return 0
    if updated != text:
        print("README settings table is stale: run python scripts/settings_table.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
