"""Write the shipped golden set (samples/golden.csv) as a `rag eval run --format jsonl` file.

A third domain for the answer gate: questions written as users write them, over the sample
documents (their text as ingestion extracts it). `rag eval run` keeps every answer's gate signals
and span F1, which `bench.fit_gate` needs and the golden-set runner does not store.

    .venv/bin/python -m bench.golden_jsonl /tmp/golden.jsonl
    RAG_ANSWER_GATE=off rag eval run --format jsonl --dataset /tmp/golden.jsonl --out runs/golden

Documents given as text lose their structure (headings, sections). With --no-context the rows
name their file only, and the run reads a KB ingested from the files themselves, as a user's is:

    rag ingest samples/docs --kb golden-files
    .venv/bin/python -m bench.golden_jsonl /tmp/golden-files.jsonl --no-context
    RAG_ANSWER_GATE=off rag eval run --format jsonl --dataset /tmp/golden-files.jsonl \
        --kb golden-files --out runs/golden-files
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eval.golden import read_golden_file
from ingest.load import parse_bytes, read_bytes

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def rows(golden: Path, docs: Path, with_context: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, item in enumerate(read_golden_file(golden), 1):
        row: dict[str, Any] = {
            "id": f"golden-{n}",
            "question": item.question,
            "answers": [item.expected] if item.expected else [],
        }
        if item.source:
            row["source"] = item.source
            # each document's text once; later rows name it
            if with_context and item.source not in seen:
                path = docs / item.source
                row["context"] = parse_bytes(item.source, path.suffix, read_bytes(path, 50)).text
                seen.add(item.source)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSONL file to write")
    parser.add_argument("--golden", type=Path, default=SAMPLES / "golden.csv")
    parser.add_argument("--docs", type=Path, default=SAMPLES / "docs")
    parser.add_argument(
        "--no-context",
        action="store_true",
        help="Name each row's file only, for a run over a KB ingested from the files (--kb).",
    )
    args = parser.parse_args()
    lines = rows(args.golden, args.docs, with_context=not args.no_context)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    answerable = sum(bool(r["answers"]) for r in lines)
    print(f"wrote {args.out}: {len(lines)} questions, {answerable} answerable")


if __name__ == "__main__":
    main()
