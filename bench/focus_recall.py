"""Reading recall: how often the sentences the model is shown (rag_app.answering.generate.focus)
hold the gold answer sentence, per data set, width and topic weight. No model is called.

The model can only extract what its focused sentences say, so this is the ceiling of what a
reading width and sentence ranking allow. Questions without a gold sentence (unanswerable) are
left out. Data sets: SQuAD 2.0 JSON (--squad, sampled like `rag eval run --limit --seed`),
JSONL in eval's format (--jsonl, e.g. from bench.hotpot_jsonl) and a golden CSV with an
`evidence` column (--golden, over --docs).

    .venv/bin/python -m bench.focus_recall --squad ../shared/data/squad2/dev-v2.0.part-a.json \
        --golden samples/golden.csv --weights 0,0.5 --widths 1,3
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import print_section, write_results  # noqa: E402

Case = tuple[str, tuple[str, ...]]  # question, gold sentences


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--squad", type=Path, help="SQuAD 2.0 JSON file.")
    p.add_argument("--jsonl", type=Path, action="append", default=[], help="Eval JSONL file.")
    p.add_argument("--golden", type=Path, help="Golden CSV with an evidence column.")
    p.add_argument("--docs", type=Path, default=REPO / "samples" / "docs", help="Golden's docs.")
    p.add_argument("--limit", type=int, default=300, help="Questions sampled per data set.")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--widths", default="1,3", help="Sentences shown, comma-separated.")
    p.add_argument("--weights", default="0,0.5", help="Topic weights, comma-separated.")
    p.add_argument("--name", default="focus_recall", help="Results file bench/results/<name>.json")
    return p.parse_args(argv)


def holds(focused: list[dict[str, Any]], gold: tuple[str, ...]) -> bool:
    """A focused sentence is a gold one: it has most of the gold sentence's content words."""
    from rag_app.answering.verify import lexical_support

    return any(lexical_support(g, p["text"]) >= 0.8 for g in gold for p in focused)


def dataset_cases(
    path: Path, fmt: str, limit: int, seed: int, settings: Any
) -> tuple[Any, list[Case]]:
    from eval.datasets import load_dataset, sample_questions
    from eval.kb_build import ensure_kb

    dataset = load_dataset(path, fmt)  # type: ignore[arg-type]
    kb = ensure_kb(dataset, settings)
    picked = sample_questions(list(dataset.questions), limit, seed)
    return kb, [(q.question, q.evidence) for q in picked if q.answers and q.evidence]


def golden_cases(path: Path) -> list[Case]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        (r["question"], tuple(e for e in (r.get("evidence"), r.get("evidence_2")) if e))
        for r in rows
        if r.get("expected") and r.get("evidence")
    ]


def measure(name: str, kb: Any, cases: list[Case], widths: list[int], weights: list[float],
            settings: Any) -> list[dict[str, Any]]:  # fmt: skip
    from rag_app.answering.generate import focus
    from rag_app.answering.retrieve import retrieve

    hits = [retrieve(q, kb, settings) for q, _ in cases]
    rows = []
    for width in widths:
        for weight in weights:
            found = sum(
                holds(focus(q, h, kb.embeddings, width, weight), gold)
                for (q, gold), h in zip(cases, hits, strict=True)
            )
            share = round(100 * found / len(cases), 1)
            rows.append({"data": name, "questions": len(cases), "sentences": width,
                         "topic weight": weight, "recall %": share})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def run(args: argparse.Namespace) -> int:
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths
    from rag_app.settings import Settings

    settings = Settings()
    widths = [int(w) for w in args.widths.split(",")]
    weights = [float(w) for w in args.weights.split(",")]
    rows: list[dict[str, Any]] = []
    sets = [(p, "squad2") for p in [args.squad] if p] + [(p, "jsonl") for p in args.jsonl]
    for path, fmt in sets:
        kb, cases = dataset_cases(path, fmt, args.limit, args.seed, settings)
        rows += measure(path.stem, kb, cases, widths, weights, settings)
    if args.golden:
        with tempfile.TemporaryDirectory(prefix="rag-bench-focus-") as tmp:
            kb_settings = settings.model_copy(update={"data_dir": Path(tmp)})
            kb = open_kb("samples", kb_settings, create=True)
            ingest_paths([args.docs], kb)
            cases = golden_cases(args.golden)
            rows += measure("golden", kb, cases, widths, weights, kb_settings)
    print_section("Gold sentence among the focused sentences", rows)
    print(f"wrote {write_results(args.name, {'rows': rows}, vars(args))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
