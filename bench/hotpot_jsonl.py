"""Write the shared HotpotQA sample as a `rag eval run --format jsonl` file, with unanswerables.

A second domain for the answer gate (Wikipedia multi-hop questions, not SQuAD's phrasing). Each
question becomes one document: its context paragraphs ("Title: text"), gold and distractors. For
every other question (seeded) the gold paragraphs are left out and its answers emptied, so the
set has questions whose answer is truly absent from the knowledge base. Yes/no questions are
dropped: direct answering extracts spans, and "yes" is never a span.

    .venv/bin/python -m bench.hotpot_jsonl /tmp/hotpot.jsonl
    RAG_ANSWER_GATE=off rag eval run --format jsonl --dataset /tmp/hotpot.jsonl --out runs/hotpot
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multihop"
SOURCE = DATA / "hotpot_dev_distractor_v1.first100.json"


def rows(items: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for item in items:
        if item["answer"].strip().lower() in {"yes", "no"}:
            continue
        unanswerable = rng.random() < 0.5
        gold = {title for title, _ in item["supporting_facts"]}
        paragraphs = [
            f"{title}: {''.join(sentences).strip()}"
            for title, sentences in item["context"]
            if not (unanswerable and title in gold)
        ]
        out.append(
            {
                "id": item["_id"],
                "question": item["question"],
                "answers": [] if unanswerable else [item["answer"]],
                "context": "\n\n".join(paragraphs),
                "source": f"hotpot-{item['_id']}",
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSONL file to write")
    parser.add_argument("--seed", type=int, default=0, help="which questions lose their gold")
    args = parser.parse_args()
    items = json.loads(SOURCE.read_text(encoding="utf-8"))
    lines = rows(items, args.seed)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    answerable = sum(bool(r["answers"]) for r in lines)
    print(f"wrote {args.out}: {len(lines)} questions, {answerable} answerable")


if __name__ == "__main__":
    main()
