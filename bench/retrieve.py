"""Retrieval benchmark: exact FAISS vs HNSW vs LangChain's stock FAISS by size, plus hybrid search.

Run from the repository root: `python -m bench.retrieve` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models are local; never reach for the hub

from bench.common import latency_summary, print_section, time_calls, write_results  # noqa: E402
from bench.vectors import (  # noqa: E402
    BUILD_THREADS,
    DIM,
    add_all,
    corpus_and_queries,
    faiss,
    hnsw_of,
    index_bytes,
    recall_at_k,
    search_ids,
    set_ef_search,
)

K = 10
MB = 2**20


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.retrieve", description=__doc__)
    p.add_argument(
        "--sizes",
        type=_sizes,
        default=[10_000, 100_000, 1_000_000],
        help="corpus sizes for exact vs HNSW vs LangChain (comma list)",
    )
    p.add_argument(
        "--hybrid-sizes",
        type=_sizes,
        default=[10_000, 100_000],
        help="KB sizes for hybrid retrieve() (empty string skips)",
    )
    p.add_argument("--queries", type=int, default=200, help="queries per size (recall, latency)")
    p.add_argument(
        "--hybrid-queries", type=int, default=100, help="SciFact claims per hybrid KB size"
    )
    p.add_argument(
        "--ef-search",
        type=_sizes,
        default=[16, 32, 64, 96, 128, 256],
        help="efSearch values for the HNSW trade-off table",
    )
    p.add_argument(
        "--build-sweep",
        default="",
        help="extra HNSW builds 'M:efConstruction,...' at the smallest size >= 100k",
    )
    p.add_argument(
        "--search-threads",
        type=int,
        default=1,
        help="FAISS threads for the single-query latency runs (builds use all cores)",
    )
    p.add_argument(
        "--budget-ms",
        type=float,
        default=10.0,
        help="exact-search p95 budget that sets the recommended ann_threshold",
    )
    p.add_argument("--no-langchain", action="store_true", help="skip LangChain's FAISS store")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _latency(index: Any, queries: np.ndarray) -> dict[str, float]:
    timings = time_calls(
        lambda q: index.search(q, K), [queries[i : i + 1] for i in range(len(queries))]
    )
    return latency_summary(timings)


def _row(n: int, name: str, built: Any, lat: dict[str, float], recall: float) -> dict[str, Any]:
    return {
        "size": n,
        "index": name,
        "build_s": built.build_s if built else None,
        "index_MB": index_bytes(built.index) / MB
        if built and hasattr(built.index, "ntotal")
        else None,
        "rss_delta_MB": built.rss_delta / MB if built else None,
        "p50_ms": lat["p50_ms"],
        "p95_ms": lat["p95_ms"],
        "recall@10": recall,
    }


def kb_index(n: int, approximate: bool) -> Any:
    """The empty index our knowledge base builds for n vectors, forced exact or HNSW."""
    from ingest.faiss_store import build_faiss_index
    from rag_app.settings import Settings

    threshold = 0 if approximate else n + 1
    return build_faiss_index(DIM, n, Settings(ann_threshold=threshold))


def ef_sweep(
    n: int, index: Any, queries: np.ndarray, truth: np.ndarray, efs: list[int]
) -> list[dict[str, Any]]:
    """Recall and latency of one HNSW build at each efSearch (restores the KB's value after)."""
    hnsw = hnsw_of(index)
    assert hnsw is not None
    default, rows = hnsw.hnsw.efSearch, []
    for ef in efs:
        set_ef_search(index, ef)
        recall = recall_at_k(search_ids(index, queries, K), truth)
        lat = _latency(index, queries)
        rows.append(
            {
                "size": n,
                "M": hnsw.hnsw.nb_neighbors(1),
                "efConstruction": hnsw.hnsw.efConstruction,
                "efSearch": ef,
                "recall@10": recall,
                "p50_ms": lat["p50_ms"],
                "p95_ms": lat["p95_ms"],
            }
        )
    set_ef_search(index, default)
    return rows


def langchain_row(
    n: int, base: np.ndarray, queries: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    """LangChain's stock FAISS store (IndexFlatL2 + in-memory docstore) on the same vectors."""
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    from bench.common import rss_bytes
    from bench.vectors import Built

    class VectorsOnly(Embeddings):
        """We search by vector: nothing is embedded here."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise NotImplementedError

        def embed_query(self, text: str) -> list[float]:
            raise NotImplementedError

    before, start = rss_bytes(), time.perf_counter()
    store = FAISS(VectorsOnly(), faiss.IndexFlatL2(DIM), InMemoryDocstore(), {})
    for s in range(0, n, 20_000):
        rows = base[s : s + 20_000]
        # numpy rows, not lists: the stock add path np.array()s them (lists would take minutes)
        store.add_embeddings([(f"chunk {s + i}", r) for i, r in enumerate(rows)])  # type: ignore[misc]
    built = Built(store.index, time.perf_counter() - start, rss_bytes() - before)
    by_id = {v: k for k, v in store.index_to_docstore_id.items()}
    found = [
        [by_id[str(d.id)] for d in store.similarity_search_by_vector(q.tolist(), k=K)]
        for q in queries
    ]
    recall = recall_at_k(np.asarray(found), truth)
    lat = latency_summary(
        time_calls(
            lambda q: store.similarity_search_by_vector(q, k=K), [q.tolist() for q in queries]
        )
    )
    return _row(n, "LangChain FAISS (stock)", built, lat, recall)


def ann_section(
    n: int, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Exact vs HNSW (the KB's own index builder) vs LangChain at one size; + efSearch sweep."""
    print(f"[{n:,}] generating {n:,} clustered {DIM}-d vectors ...", flush=True)
    base, queries = corpus_and_queries(n, args.queries, seed=args.seed)
    rows: list[dict[str, Any]] = []
    exact = add_all(kb_index(n, approximate=False), base)
    truth = search_ids(exact.index, queries, K)
    rows.append(_row(n, "FAISS exact (IndexFlatIP)", exact, _latency(exact.index, queries), 1.0))
    del exact
    gc.collect()
    print(f"[{n:,}] building HNSW ...", flush=True)
    hnsw = add_all(kb_index(n, approximate=True), base)
    found = search_ids(hnsw.index, queries, K)
    inner = hnsw_of(hnsw.index)
    assert inner is not None
    h = inner.hnsw
    label = f"FAISS HNSW (M={h.nb_neighbors(1)}, efC={h.efConstruction}, ef={h.efSearch})"
    rows.append(_row(n, label, hnsw, _latency(hnsw.index, queries), recall_at_k(found, truth)))
    sweep = [
        {**r, "build_s": hnsw.build_s}
        for r in ef_sweep(n, hnsw.index, queries, truth, args.ef_search)
    ]
    del hnsw
    gc.collect()
    if not args.no_langchain:
        print(f"[{n:,}] LangChain FAISS ...", flush=True)
        rows.append(langchain_row(n, base, queries, truth))
    for row in rows:
        row["exact_p95_over_this"] = rows[0]["p95_ms"] / row["p95_ms"]
    if args.build_sweep and n == min((s for s in args.sizes if s >= 100_000), default=None):
        sweep += build_sweep(n, base, queries, truth, args)
    return rows, sweep


def build_sweep(
    n: int, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Extra HNSW builds (M, efConstruction) with their efSearch sweeps and build times."""
    from bench.vectors import make_hnsw

    rows: list[dict[str, Any]] = []
    for pair in args.build_sweep.split(","):
        m, efc = (int(x) for x in pair.split(":"))
        print(f"[{n:,}] build sweep M={m} efConstruction={efc} ...", flush=True)
        built = add_all(make_hnsw(DIM, m, efc), base)
        for row in ef_sweep(n, built.index, queries, truth, args.ef_search):
            rows.append({**row, "build_s": built.build_s})
    return rows


def recommend_threshold(
    rows: list[dict[str, Any]], sweep: list[dict[str, Any]], budget_ms: float, current: int
) -> dict[str, Any]:
    """Largest size whose exact p95 stays within budget (linear fit of p95 over n), if HNSW
    recall at the KB's efSearch holds >= 0.95 at every measured size above it."""
    exact = [(r["size"], r["p95_ms"]) for r in rows if r["index"].startswith("FAISS exact")]
    hnsw = {r["size"]: r for r in rows if r["index"].startswith("FAISS HNSW")}
    sizes = np.array([s for s, _ in exact], dtype=float)
    p95 = np.array([p for _, p in exact])
    slope, intercept = np.polyfit(sizes, p95, 1) if len(sizes) > 1 else (p95[0] / sizes[0], 0.0)
    crossing = (budget_ms - intercept) / slope if slope > 0 else math.inf
    nice = _round_down_nice(crossing) if math.isfinite(crossing) else None
    return {
        "budget_ms": budget_ms,
        "exact_ms_per_100k": slope * 100_000,
        "exact_p95_crosses_budget_at": None if not math.isfinite(crossing) else int(crossing),
        "recommended_ann_threshold": nice,
        "current_ann_threshold": current,
        "exact_p95_at_current_ms": intercept + slope * current,
        "hnsw_min_recall": min((r["recall@10"] for r in hnsw.values()), default=None),
        "hnsw_p95_ms_by_size": {s: r["p95_ms"] for s, r in hnsw.items()},
    }


def _round_down_nice(n: float) -> int:
    """Round down to 1, 2 or 5 times a power of ten (thresholds are not precise to the row)."""
    if n < 1:
        return 0
    power = 10 ** math.floor(math.log10(n))
    return int(max(m for m in (1, 2, 5, 10) if m * power <= n) * power)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    faiss.omp_set_num_threads(args.search_threads)
    from rag_app.settings import Settings

    current = Settings().ann_threshold
    rows: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    for n in args.sizes:
        ann, ef_rows = ann_section(n, args)
        rows += ann
        sweep += ef_rows
        print_section(f"Vector search at {n:,} chunks (k={K}, single query)", ann)
    print_section("HNSW recall/latency trade-off", sweep)
    verdict = recommend_threshold(rows, sweep, args.budget_ms, current) if rows else {}
    if verdict:
        print_section("ann_threshold check", [verdict])
    hybrid: list[dict[str, Any]] = []
    if args.hybrid_sizes:
        from bench.hybrid import hybrid_rows

        hybrid = hybrid_rows(args.hybrid_sizes, args.hybrid_queries, args.seed)
        print_section("Hybrid retrieve() (dense + BM25 + RRF) over a knowledge base", hybrid)
    params = {k: v for k, v in vars(args).items()}
    params["faiss_build_threads"] = BUILD_THREADS
    path = write_results(
        "retrieve",
        {"vector": rows, "hnsw_tradeoff": sweep, "threshold": verdict, "hybrid": hybrid},
        params,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
