"""Agent vs direct on multi-hop questions (HotpotQA dev distractor sample): answer EM/F1, success,
confident coverage and precision, gold-paragraph recall, steps and time per question.

The knowledge base holds every context paragraph of the selected questions (source id = title),
so each question's 2 gold paragraphs sit among its 8 distractors and the other questions' text.
Answers are scored like the official hotpot_evaluate_v1.py: SQuAD normalisation, and a yes/no
mismatch scores F1 = 0; an abstention is the empty answer (F1 = 0).

    .venv/bin/python bench/agent_multihop.py --limit 30 --workers 8 \\
        --llm-base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import machine_info  # noqa: E402
from eval.squad_metrics import compute_exact, compute_f1, normalize_answer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "multihop" / "hotpot_dev_distractor_v1.first100.json"
RESULTS = REPO / "bench" / "results"


def hotpot_scores(gold: str, prediction: str) -> tuple[float, float]:
    """(EM, F1) as hotpot_evaluate_v1.py: yes/no/noanswer must match exactly."""
    special = {"yes", "no", "noanswer"}
    norm_gold, norm_pred = normalize_answer(gold), normalize_answer(prediction)
    if (norm_gold in special or norm_pred in special) and norm_gold != norm_pred:
        return 0.0, 0.0
    return float(compute_exact(gold, prediction)), compute_f1(gold, prediction)


def build_kb(examples: list[dict[str, Any]], settings: Any, name: str) -> Any:
    """A KB of all context paragraphs (one document per title); reused when already built."""
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_texts

    kb = open_kb(name, settings=settings, create=True)
    if kb.count() == 0:
        paragraphs: dict[str, str] = {}
        for ex in examples:
            for title, sentences in ex["context"]:
                paragraphs.setdefault(title, "".join(sentences).strip())
        summary = ingest_texts(paragraphs.items(), kb, show_progress=True)
        print(f"indexed {len(paragraphs)} paragraphs, {summary.chunks_written} chunks", flush=True)
    return kb


def run_one(ex: dict[str, Any], mode: str, kb: Any, settings: Any, llm: Any) -> dict[str, Any]:
    from rag_app.pipeline import ask

    started = time.perf_counter()
    try:
        answer = ask(ex["question"], kb=kb, mode=mode, settings=settings, llm=llm)  # type: ignore[arg-type]
    except Exception as exc:  # one failing question is recorded, not fatal
        return {
            "id": ex["_id"],
            "mode": mode,
            "error": f"{type(exc).__name__}: {exc}",
            "f1": 0.0,
            "em": 0.0,
            "seconds": time.perf_counter() - started,
            "steps": 0,
            "recall": 0.0,
        }
    prediction = "" if answer.abstained else answer.text
    em, f1 = hotpot_scores(ex["answer"], prediction)
    gold = {title for title, _ in ex["supporting_facts"]}
    seen = {h.chunk.source for h in answer.hits}
    return {
        "id": ex["_id"],
        "mode": mode,
        "type": ex["type"],
        "question": ex["question"],
        "gold": ex["answer"],
        "prediction": prediction,
        "abstained": answer.abstained,
        "kind": answer.kind,
        "p_correct": answer.p_correct,
        "em": em,
        "f1": f1,
        "recall": len(gold & seen) / len(gold),
        "steps": len(answer.steps),
        "tokens": answer.usage.prompt_tokens + answer.usage.completion_tokens,
        "seconds": round(time.perf_counter() - started, 3),
        "message": answer.message,
        "plan": answer.plan,
        "actions": [f"{s.action}({s.action_input})" for s in answer.steps],
    }


def summarise(rows: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    n = len(rows) or 1
    # "Right" is success (F1 >= 0.5), as in success_rate: precision of the answers shown as
    # confident, and coverage = the share of questions that got one.
    confident = [r for r in rows if r.get("kind") == "confident"]
    return {
        "questions": len(rows),
        "answer_em": round(100 * sum(r["em"] for r in rows) / n, 1),
        "answer_f1": round(100 * sum(r["f1"] for r in rows) / n, 1),
        "success_rate": round(100 * sum(r["f1"] >= 0.5 for r in rows) / n, 1),
        "abstained": round(100 * sum(bool(r.get("abstained")) for r in rows) / n, 1),
        "confident_coverage": round(100 * len(confident) / n, 1),
        "confident_precision": round(
            100 * sum(r["f1"] >= 0.5 for r in confident) / (len(confident) or 1), 1
        ),
        "tentative": round(100 * sum(r.get("kind") == "tentative" for r in rows) / n, 1),
        "gold_paragraph_recall": round(100 * sum(r["recall"] for r in rows) / n, 1),
        "mean_steps": round(sum(r["steps"] for r in rows) / n, 2),
        "mean_tokens": round(sum(r.get("tokens", 0) for r in rows) / n),
        "seconds_per_question": round(sum(r["seconds"] for r in rows) / n, 2),
        "wall_seconds": round(wall, 1),
        "errors": sum("error" in r for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="HotpotQA JSON (official layout).")
    parser.add_argument("--limit", type=int, default=30, help="Questions scored (first N).")
    parser.add_argument("--workers", type=int, default=8, help="Questions answered concurrently.")
    parser.add_argument("--modes", default="direct,agent", help="Comma-separated answer modes.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("/tmp/rag-bench-multihop"),
        help="Data dir for the benchmark's knowledge base (kept between runs).",
    )
    parser.add_argument("--llm-base-url", default=None, help="OpenAI-compatible endpoint (…/v1).")
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_multihop.json")
    args = parser.parse_args(argv)

    from rag_app.serving.llm import chat_model
    from rag_app.settings import Settings

    overrides = {"llm_base_url": args.llm_base_url} if args.llm_base_url else {}
    settings = Settings(data_dir=args.data_dir, **overrides)
    examples = json.loads(args.data.read_text())
    kb = build_kb(examples, settings, "hotpot100")
    llm = chat_model(settings)
    chosen = examples[: args.limit]
    report: dict[str, Any] = {"machine": machine_info(), "data": str(args.data), "modes": {}}
    from rag_app.serving.presets import preset_for

    # RAG_LLM_PRESET (auto resolved for this CPU); the served model is the endpoint's
    report["preset"] = preset_for(settings)[0]
    all_rows = []
    for mode in args.modes.split(","):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            rows = list(pool.map(lambda ex, m=mode: run_one(ex, m, kb, settings, llm), chosen))
        report["modes"][mode] = summarise(rows, time.perf_counter() - started)
        all_rows += rows
        print(mode, json.dumps(report["modes"][mode]), flush=True)
    report["rows"] = all_rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    keys = list(next(iter(report["modes"].values())))
    print("| mode | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for mode, summary in report["modes"].items():
        print(f"| {mode} | " + " | ".join(str(summary[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
