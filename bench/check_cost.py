"""Cost of the answer check (rag_app/answering/check.py): answer time with it on vs off.

The same questions are asked one at a time with `check_answers` on and off, alternating per
question so that load on the machine falls on both variants alike; p50/p95 of each and the ratio
of the p50s. The issue's budget: the check adds at most 30% to an answer's p50. The questions are
the shipped golden set's over the sample documents (a fresh KB in a temporary data dir); the
model is the configured one (RAG_DATA_DIR / RAG_LLM_PRESET, or RAG_LLM_BASE_URL).

    .venv/bin/python -m bench.check_cost --limit 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import latency_summary, print_section, write_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=30, help="questions (first N of the golden set)")
    p.add_argument("--golden", type=Path, default=REPO / "samples" / "golden.csv")
    p.add_argument("--docs", type=Path, default=REPO / "samples" / "docs")
    args = p.parse_args(argv)

    from eval.golden import read_golden_file
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths
    from rag_app.pipeline import ask
    from rag_app.serving.llm import chat_model
    from rag_app.serving.presets import preset_for
    from rag_app.settings import get_settings

    settings = get_settings()
    questions = [i.question for i in read_golden_file(args.golden)][: args.limit]
    llm = chat_model(settings)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="rag-bench-check-") as tmp:
        kb_settings = settings.model_copy(update={"data_dir": Path(tmp)})
        kb = open_kb("samples", kb_settings, create=True)
        ingest_paths([args.docs], kb)
        variants = {
            on: kb_settings.model_copy(update={"check_answers": on}) for on in (True, False)
        }
        ask(questions[0], kb, settings=variants[True], llm=llm)  # warm-up: caches, connections
        for n, question in enumerate(questions):
            order = (True, False) if n % 2 == 0 else (False, True)
            for check in order:
                started = time.perf_counter()
                ask(question, kb, settings=variants[check], llm=llm)
                seconds[check].append(time.perf_counter() - started)
            print(f"\r{n + 1}/{len(questions)}", end="", flush=True)
    print()
    on, off = latency_summary(seconds[True]), latency_summary(seconds[False])
    ratio = on["p50_ms"] / off["p50_ms"]
    rows: list[dict[str, object]] = [
        {"variant": "check off", "p50 ms": round(off["p50_ms"]), "p95 ms": round(off["p95_ms"])},
        {"variant": "check on", "p50 ms": round(on["p50_ms"]), "p95 ms": round(on["p95_ms"])},
        {"variant": "on / off (p50)", "p50 ms": f"{ratio:.2f}x", "p95 ms": ""},
    ]
    print_section(
        f"Answer time with and without the answer check ({preset_for(settings)[0]})", rows
    )
    load = os.getloadavg()
    results = {"check_on": on, "check_off": off, "p50_ratio": ratio, "loadavg": load}
    params = {"limit": args.limit, "golden": str(args.golden), "docs": str(args.docs)}
    print(f"wrote {write_results('check_cost', results, params)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
