"""CLI helper for `rag eval run --kb NAME --golden FILE`: a golden set asked of a user's KB.

The same run the UI's quality page starts (eval.golden_run), so both write the same run folder
under `<data_dir>/quality/<kb>/runs/` and the page's chart shows CLI runs too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

if TYPE_CHECKING:
    from rag_app.records import Mode


def run_golden_cli(golden: Path, kb_name: str, mode: str, concurrency: int, as_json: bool) -> None:
    from eval.golden import read_golden_file
    from eval.golden_run import HEADLINE, run_golden
    from ingest.embed import limit_threads
    from ingest.kb import open_kb
    from rag_app.errors import ConfigError
    from rag_app.settings import get_settings

    if mode not in ("direct", "cot", "cited", "agent"):
        raise ConfigError(f"rag eval run --mode {mode!r}: use direct, cot, cited or agent")
    settings = get_settings()
    limit_threads(settings)
    items = read_golden_file(golden)  # refused before any model is loaded
    kb = open_kb(kb_name or settings.kb, settings=settings)

    def progress(done: int, total: int) -> None:
        if not as_json and done:
            typer.echo(f"\r{done}/{total} questions", nl=done == total, err=True)

    summary = run_golden(
        items,
        kb,
        settings,
        mode=cast("Mode", mode),
        concurrency=concurrency,
        progress=progress,
    )
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for key, label in HEADLINE.items():
        value = summary["headline"].get(key)
        shown = "—" if value is None else f"{value:.2f}" if key == "support" else f"{value:.1f}"
        typer.echo(f"{label:<26} {shown}")
    typer.echo(f"{summary['questions']} questions · errors {summary['errors']} · kb {kb.name}")
