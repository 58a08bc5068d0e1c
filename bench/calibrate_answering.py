"""Calibrate answering thresholds on a DEV split of SQuAD 2.0 part A (never on test questions).

Two recipes, both reproducible:

1. support (no LLM): positives = (sentence of a context holding a gold answer, that context) and
   (gold answer span, that context); negatives = the same texts against another context of the
   same article whose text lacks the answer. Grid over verify.LEXICAL_WEIGHT and the threshold,
   pick the best balanced accuracy  -> settings.support_threshold.
2. confidence (real LLM): run the `direct` pipeline with min_confidence=0 on dev questions, record
   the answer's token-probability confidence, and pick the threshold that maximises SQuAD F1
   (abstaining = predicting "")  -> settings.min_confidence.

    RAG_LLM_BASE_URL=http://127.0.0.1:8000/v1 python -m bench.calibrate_answering \\
        --kb-articles 0-5 --dev-articles 0-2 --limit 200

Writes bench/results/calibrate_answering.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rag_app.answering.ground import token_f1
from rag_app.answering.verify import split_sentences
from rag_app.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2" / "dev-v2.0.part-a.json"
RESULTS = Path(__file__).resolve().parent / "results" / "calibrate_answering.json"


def articles(spec: str) -> range:
    first, _, last = spec.partition("-")
    return range(int(first), int(last or first) + 1)


def support_pairs(data: list[dict[str, Any]], arts: range, rng: random.Random) -> list[tuple]:
    """(claim, passage, label) pairs: label 1 = the passage supports the claim."""
    pairs: list[tuple[str, str, int]] = []
    for i in arts:
        contexts = [p["context"] for p in data[i]["paragraphs"]]
        for j, para in enumerate(data[i]["paragraphs"]):
            for qa in para["qas"][:3]:
                if qa["is_impossible"]:
                    continue
                gold = qa["answers"][0]["text"]
                sentence = next((s for s in split_sentences(para["context"]) if gold in s), gold)
                others = [c for k, c in enumerate(contexts) if k != j and gold not in c]
                if not others:
                    continue
                other = rng.choice(others)
                for claim in (gold, sentence):
                    pairs += [(claim, para["context"], 1), (claim, other, 0)]
    return pairs


def _features(pairs: list[tuple], settings: Settings) -> tuple[Any, Any]:
    """verify.py's two support parts for every pair, with all texts embedded in one batch."""
    import numpy as np

    from ingest.embed import load_embedder
    from rag_app.answering.verify import lexical_support, strip_markers

    sentences = {p[1]: split_sentences(p[1]) or [p[1]] for p in pairs}
    texts = sorted(
        {strip_markers(p[0]) for p in pairs} | {s for v in sentences.values() for s in v}
    )
    vectors = np.asarray(load_embedder(settings).embed_documents(texts), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    row = {t: i for i, t in enumerate(texts)}
    lexical, cosine = [], []
    for claim, passage, _ in pairs:
        claim = strip_markers(claim)
        parts = vectors[[row[s] for s in sentences[passage]]]
        lexical.append(lexical_support(claim, passage))
        cosine.append(float((parts @ vectors[row[claim]]).max()))
    return np.array(lexical), np.array(cosine)


def calibrate_support(pairs: list[tuple], settings: Settings) -> dict[str, Any]:
    """Grid over the lexical weight and threshold; best balanced accuracy wins."""
    import numpy as np

    labels = np.array([p[2] for p in pairs])
    lex, cos = _features(pairs, settings)
    best: dict[str, Any] = {"balanced_accuracy": 0.0}
    for weight in np.linspace(0, 1, 11):
        score = np.clip(weight * lex + (1 - weight) * cos, 0, 1)
        for threshold in np.linspace(0.2, 0.9, 36):
            pred = score >= threshold
            tpr, tnr = pred[labels == 1].mean(), (~pred[labels == 0]).mean()
            if (tpr + tnr) / 2 > best["balanced_accuracy"]:
                best = {
                    "balanced_accuracy": round(float((tpr + tnr) / 2), 4),
                    "lexical_weight": round(float(weight), 2),
                    "support_threshold": round(float(threshold), 3),
                    "true_positive_rate": round(float(tpr), 4),
                    "true_negative_rate": round(float(tnr), 4),
                }
    from rag_app.answering.verify import LEXICAL_WEIGHT

    score = np.clip(LEXICAL_WEIGHT * lex + (1 - LEXICAL_WEIGHT) * cos, 0, 1)
    current = max(
        (((score >= t)[labels == 1].mean() + (score < t)[labels == 0].mean()) / 2, t)
        for t in np.linspace(0.2, 0.9, 36)
    )
    at_weight = {"lexical_weight": LEXICAL_WEIGHT, "support_threshold": round(float(current[1]), 3),
                 "balanced_accuracy": round(float(current[0]), 4)}  # fmt: skip
    return {"pairs": len(pairs), "best": best, "at_current_weight": at_weight}


def dev_questions(data: list[dict[str, Any]], arts: range, limit: int, seed: int) -> list[dict]:
    qs = [qa for i in arts for para in data[i]["paragraphs"] for qa in para["qas"]]
    random.Random(seed).shuffle(qs)
    return qs[:limit]


def collect_confidence(data: list[dict], args: argparse.Namespace, settings: Settings) -> list:
    """Run `direct` with min_confidence=0; per question: (confidence or None if abstained, f1s)."""
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_texts
    from rag_app.pipeline import ask
    from rag_app.serving.llm import chat_model

    kb = open_kb("calibrate", settings=settings, create=True)
    if kb.count() == 0:
        records = [
            (f"squad/{data[i]['title']}/{j}", p["context"])
            for i in articles(args.kb_articles)
            for j, p in enumerate(data[i]["paragraphs"])
        ]
        ingest_texts(records, kb, show_progress=True)
    llm = chat_model(settings)

    def one(qa: dict) -> dict[str, Any]:
        answer = ask(qa["question"], kb, settings=settings, llm=llm)
        golds = [a["text"] for a in qa["answers"]] or [""]
        pred = "" if answer.abstained else answer.text
        f1 = max(token_f1(pred, g) if g else float(pred == "") for g in golds)
        return {"answered": not answer.abstained, "confidence": answer.confidence,
                "f1": f1, "impossible": qa["is_impossible"]}  # fmt: skip

    questions = dev_questions(data, articles(args.dev_articles), args.limit, args.seed)
    with ThreadPoolExecutor(args.workers) as pool:
        return list(pool.map(one, questions))


def pick_confidence(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The min_confidence that maximises SQuAD F1 over the dev rows (abstain below it)."""
    curve = []
    for step in range(0, 21):
        tau = step / 20
        total = 0.0
        for r in rows:
            keep = r["answered"] and (r["confidence"] or 0.0) >= tau
            total += r["f1"] if keep else float(r["impossible"])
        curve.append({"min_confidence": tau, "f1": round(100 * total / len(rows), 2)})
    best = max(curve, key=lambda c: (c["f1"], -c["min_confidence"]))
    return {"questions": len(rows), "best": best, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb-articles", default="0-5", help="articles whose contexts form the KB")
    parser.add_argument("--dev-articles", default="0-2", help="articles whose questions calibrate")
    parser.add_argument("--limit", type=int, default=200, help="dev questions for the LLM part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=16, help="concurrent LLM requests")
    parser.add_argument("--skip-llm", action="store_true", help="only the support calibration")
    args = parser.parse_args()
    data = json.loads(DATA.read_text())["data"]
    out: dict[str, Any] = {"dataset": str(DATA.name), "args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), min_confidence=0.0)
        pairs = support_pairs(data, articles(args.dev_articles), random.Random(args.seed))
        out["support"] = calibrate_support(pairs, settings)
        print(json.dumps(out["support"]))
        if not args.skip_llm:
            out["confidence"] = pick_confidence(collect_confidence(data, args, settings))
            print(json.dumps(out["confidence"]["best"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
