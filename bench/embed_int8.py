"""Benchmark: retrieval quality of the int8 document embedder vs full precision, on SciFact.

Ingestion embeds documents with the int8 variant of the MiniLM ONNX export (setting
`embedding_int8`); questions keep full precision. This measures what that costs in retrieval:
every SciFact document (title + abstract, truncated by the model at 256 tokens, as BEIR does) is
embedded once with fp32 and once with int8, each query with fp32, and exact inner-product search
ranks the corpus. recall@10 and nDCG@10 against the qrels (eval/retrieval_metrics.py), plus the
cosine between each document's two vectors and each variant's documents/s in this process.

    .venv/bin/python -m bench.embed_int8                 # all 5,183 documents, all qrels queries
    .venv/bin/python -m bench.embed_int8 --docs 1000     # quick check (qrels limited to them)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import markdown_table, write_results  # noqa: E402
from eval.retrieval_metrics import ndcg_at_k, recall_at_k  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "scifact"


def load_scifact(folder: Path, max_docs: int) -> tuple[list[str], list[str], dict, dict]:
    """(doc ids, doc texts, {query id: text}, {query id: {doc id: grade}}) for queries whose
    relevant documents are all among the loaded ones."""
    ids, texts = [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            ids.append(str(doc["_id"]))
            texts.append(f"{doc['title']}\n{doc['text']}")
            if max_docs and len(ids) >= max_docs:
                break
    known = set(ids)
    qrels: dict[str, dict[str, int]] = {}
    for path in sorted((folder / "qrels").glob("*.tsv")):
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    qrels = {q: rel for q, rel in qrels.items() if set(rel) <= known}
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    return ids, texts, queries, qrels


def score(
    doc_vectors: np.ndarray,
    query_vectors: np.ndarray,
    ids: list[str],
    qids: list[str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, float]:
    top = np.argsort(-(query_vectors @ doc_vectors.T), axis=1)[:, :10]
    ranked = [[ids[j] for j in row] for row in top]
    return {
        "recall@10": float(
            np.mean([recall_at_k(r, qrels[q], 10) for r, q in zip(ranked, qids, strict=True)])
        ),
        "ndcg@10": float(
            np.mean([ndcg_at_k(r, qrels[q], 10) for r, q in zip(ranked, qids, strict=True)])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help="BEIR SciFact folder")
    parser.add_argument("--docs", type=int, default=0, help="first N documents (0 = all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--name", default="embed_int8", help="bench/results/NAME.json")
    args = parser.parse_args()

    from ingest.embed import load_embedder, resolve_model
    from ingest.onnx_embed import INT8_FILE, OnnxEmbeddings, find_export, quantize_export
    from rag_app.settings import Settings

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-int8-")))
    load_embedder(settings)  # sentence-transformers once: it writes the ONNX export
    target, name = resolve_model(settings)
    folder = find_export(settings, target)
    if folder is None or quantize_export(folder) is None:
        raise SystemExit("the ONNX export or its int8 variant could not be made (see the log)")
    fp32 = OnnxEmbeddings(folder, name, args.batch_size, cache_size=0)
    int8 = OnnxEmbeddings(folder, name, args.batch_size, cache_size=0, graph=INT8_FILE)

    ids, texts, queries, qrels = load_scifact(args.data, args.docs)
    qids = list(queries)
    print(f"{len(ids)} documents, {len(qids)} queries with qrels")
    query_vectors = fp32.embed_array([queries[q] for q in qids])
    rows: list[dict[str, Any]] = []
    vectors: dict[str, np.ndarray] = {}
    for label, model in (("fp32 (ONNX)", fp32), ("int8 (ONNX, MatMul per-channel)", int8)):
        model.embed_array(texts[:64])  # warm-up (no cache: cache_size=0)
        t0 = time.perf_counter()
        vectors[label] = model.embed_array(texts)
        seconds = time.perf_counter() - t0
        rows.append(
            {"document vectors": label, "docs/s": len(texts) / seconds, "seconds": seconds}
            | score(vectors[label], query_vectors, ids, qids, qrels)
        )
    a, b = vectors.values()
    cosine = np.sum(a * b, axis=1)
    rows[1]["cosine to fp32 (min / mean)"] = f"{cosine.min():.4f} / {cosine.mean():.4f}"
    rows[1]["speed-up"] = rows[1]["docs/s"] / rows[0]["docs/s"]
    cols = ["document vectors", "recall@10", "ndcg@10", "docs/s", "speed-up"]
    cols += ["cosine to fp32 (min / mean)"]
    print(markdown_table(rows, cols))
    summary = {"rows": rows, "documents": len(ids), "queries": len(qids)}
    path = write_results(args.name, summary, vars(args) | {"data": str(args.data)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
