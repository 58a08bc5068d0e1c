"""Answer quality on the shipped golden set (samples/golden.csv) over the sample documents, by
question type: confident, right, tentative, abstained, wrong; precision and coverage.

The samples are ingested into a fresh KB under a temporary data dir, then the set runs through
eval.golden_run.run_golden, the function behind `rag eval run --kb NAME --golden FILE` and the
UI's quality page. The model comes from the configured data dir (RAG_DATA_DIR, prepared with
`rag model prepare --preset P`) or RAG_LLM_BASE_URL / --llm-base-url; it is never prepared here.
A quality benchmark, not a timed test: numbers depend on the preset, not on the machine.

    .venv/bin/python -m bench.golden_samples --preset qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import print_section, write_results  # noqa: E402

GOLDEN = REPO / "samples" / "golden.csv"
DOCS = REPO / "samples" / "docs"
KB_NAME = "samples"
TYPES = ("fact", "two-hop", "comparison", "arithmetic", "unanswerable")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Set RAG_DATA_DIR to the data dir holding the prepared model.",
    )
    p.add_argument("--golden", type=Path, default=GOLDEN, help="Golden set (CSV/JSONL).")
    p.add_argument("--docs", type=Path, default=DOCS, help="Documents ingested into the KB.")
    p.add_argument("--preset", default="", help="llm_preset (default: RAG_LLM_PRESET / auto).")
    p.add_argument("--llm-base-url", default="", help="Use this OpenAI-compatible endpoint.")
    p.add_argument("--mode", default="direct", help="Answer mode: direct | cot | cited | agent.")
    p.add_argument("--concurrency", type=int, default=2, help="Questions in flight at once.")
    p.add_argument("--limit", type=int, default=0, help="Ask only the first N questions.")
    p.add_argument(
        "--name", default="", help="Results file bench/results/<name>.json (default: by preset)."
    )
    return p.parse_args(argv)


def type_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts per question type, then all: how each kind of answer turned out."""
    kinds = [t for t in TYPES if any(r.get("category") == t for r in rows)]
    kinds += sorted({str(r.get("category") or "") for r in rows} - set(kinds))
    groups = [(k or "(none)", [r for r in rows if (r.get("category") or "") == k]) for k in kinds]
    return [count_row(name, group) for name, group in [*groups, ("all", rows)]]


def count_row(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    confident = [r for r in rows if r.get("kind") == "confident"]
    right = sum(1 for r in confident if r.get("right"))
    answered = sum(1 for r in confident if r.get("right") and r.get("expected"))
    answerable = sum(1 for r in rows if r.get("expected"))
    return {
        "type": name,
        "questions": len(rows),
        "confident": len(confident),
        "confident right": right,
        "tentative right": sum(
            1 for r in rows if r.get("kind") == "tentative" and r.get("lenient_right")
        ),
        "abstained": sum(1 for r in rows if r.get("kind") == "abstained"),
        "wrong confident": len(confident) - right,
        "errors": sum(1 for r in rows if r.get("error")),
        # precision: of the confident answers, how many were right; coverage: of the questions
        # the documents answer, how many got a confident right answer
        "precision %": 100 * right / len(confident) if confident else None,
        "coverage %": 100 * answered / answerable if answerable else None,
    }


def settings_for(args: argparse.Namespace) -> Any:
    """The user's settings (model, server) with the CLI's overrides."""
    from rag_app.settings import Settings

    update: dict[str, Any] = {}
    if args.preset:
        update["llm_preset"] = args.preset
    if args.llm_base_url:
        update["llm_base_url"] = args.llm_base_url
    return Settings(**update)


def endpoint(settings: Any) -> str:
    """The LLM URL: the configured one, or the local server over an already prepared model."""
    from rag_app.errors import ModelError
    from rag_app.serving.llm import ensure_llm_endpoint
    from rag_app.serving.model import find_prepared
    from rag_app.serving.presets import preset_for

    if not settings.llm_base_url and find_prepared(settings) is None:
        preset = preset_for(settings)[0]
        raise ModelError(
            f"no prepared model for preset {preset} in {settings.models_dir}: run "
            f"`rag model prepare --preset {preset}` with RAG_DATA_DIR={settings.root} first, "
            "or set RAG_LLM_BASE_URL / --llm-base-url to a running server"
        )
    return ensure_llm_endpoint(settings)


def run(args: argparse.Namespace) -> int:
    from eval.golden import read_golden_file
    from eval.golden_run import run_golden, run_rows
    from ingest.embed import limit_threads
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths
    from rag_app.serving.presets import preset_for

    items = read_golden_file(args.golden)[: args.limit or None]
    settings = settings_for(args)
    preset = args.preset or (preset_for(settings)[0] if not args.llm_base_url else "(endpoint)")
    url = endpoint(settings)
    print(f"LLM endpoint: {url} · preset {preset} · {len(items)} questions", flush=True)
    with tempfile.TemporaryDirectory(prefix="rag-bench-golden-") as tmp:
        kb_settings = settings.model_copy(update={"data_dir": Path(tmp), "llm_base_url": url})
        kb = open_kb(KB_NAME, kb_settings, create=True)
        ingested = ingest_paths([args.docs], kb)
        print(f"KB {KB_NAME}: {ingested.added} documents, {kb.count()} chunks", flush=True)
        limit_threads(kb_settings)  # as `rag eval run` does, after ingestion
        started = time.perf_counter()
        summary = run_golden(
            items,
            kb,
            kb_settings,
            mode=args.mode,
            concurrency=args.concurrency,
            progress=lambda d, t: print(f"\r{d}/{t} questions", end="", flush=True),
            out_dir=Path(tmp) / "run",
        )
        wall = time.perf_counter() - started
        rows = run_rows(Path(tmp) / "run")
    print()
    table = type_rows(rows)
    print_section(f"Golden set by question type ({preset}, mode {args.mode})", table)
    keep = ("id", "category", "question", "expected", "answer", "kind", "verdict", "error")
    results = {
        "by_type": table,
        "headline": summary["headline"],
        "wall_s": round(wall, 1),
        "rows": [{k: r.get(k) for k in keep} for r in rows],
    }
    params = {**vars(args), "preset": preset, "llm_endpoint": url, "questions": len(items)}
    name = args.name or f"golden_samples_{preset.strip('()')}"
    print(f"wrote {write_results(name, results, params)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from rag_app.errors import RagError

    try:
        return run(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
