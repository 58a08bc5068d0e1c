"""Profile the answering path (pyinstrument) the way `rag chat` calls it, before and after reuse.

Variants, all in one process on the same questions over the samples/ KB plus --kb-chunks
synthetic chunks (so the index has a realistic size):
"reload model": like "by name" and the embedding model is loaded again per request (what
  ingest.embed.load_embedder's per-process cache removed; reproduced by clearing that cache);
"by name": ask_stream(question, kb=<name>) with no llm, as the `rag chat` REPL calls it per turn:
  each request re-opens the KB (manifest, SQLite, FAISS file read) and builds a new chat client
  (a /v1/models probe and a fresh HTTP connection pool);
"reuse": the KB and the chat model are opened once and passed in (what the Streamlit UI does
  with st.cache_resource, and what `rag chat` should do);
"reuse + embedding cache": also the embedder's LRU text->vector cache (ingest.embed
  .SentenceEmbeddings; disabled in the variants above), so texts embedded twice per answer
  (question; passage sentences in focus and verify) are embedded once;
"... + 1 thread": also one intra-op thread for torch and FAISS in this process
  (settings.answer_threads, which `rag ask/chat/ui/eval` apply). Their OpenMP pools spin-wait
  for every core, which the vLLM server (and other users' requests) also need; per-request work
  is small, so parallelism across requests serves better than within one.
The first three variants are the state before these fixes; the last is what the product does.
Run from the repository root: `python -m bench.profile_answer` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models are local; never reach for the hub

from bench.common import (  # noqa: E402
    RESULTS_DIR,
    latency_summary,
    library_threads,
    print_section,
    write_results,
)

KB_NAME = "bench-profile"
# Functions whose inclusive time is reported (name as pyinstrument records it).
STAGES = (
    "open_kb",
    "chat_model",
    "ensure_llm_endpoint",
    "retrieve",
    "focus",
    "stream_answer",
    "verify",
    "embed_array",
    "read_index",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.profile_answer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--requests",
        type=int,
        default=10,
        help="questions per variant (the 10 single-turn sample questions, cycled)",
    )
    p.add_argument("--mode", default="direct", choices=["direct", "cot", "cited"])
    p.add_argument(
        "--kb-chunks",
        type=int,
        default=20_000,
        help="synthetic chunks added beside samples/ (index size for the re-read cost)",
    )
    p.add_argument(
        "--html", action="store_true", help="also save pyinstrument HTML reports to bench/results/"
    )
    return p.parse_args(argv)


def stage_seconds(root: Any, names: Iterable[str] = STAGES) -> dict[str, float]:
    """Inclusive seconds per function name (outermost call only, so recursion counts once)."""
    wanted = set(names)
    totals = dict.fromkeys(wanted, 0.0)

    def walk(frame: Any, inside: frozenset[str]) -> None:
        name = frame.function
        if name in wanted and name not in inside:
            totals[name] += frame.time
            inside = inside | {name}
        for child in frame.children:
            walk(child, inside)

    if root is not None:
        walk(root, frozenset())
    return totals


def profile_variant(
    label: str, call: Callable[[str], Any], questions: list[str], html: bool
) -> dict[str, Any]:
    """Run every question under pyinstrument; per-request latency and per-stage totals."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    timings = []
    profiler.start()
    for question in questions:
        start = time.perf_counter()
        call(question)
        timings.append(time.perf_counter() - start)
    profiler.stop()
    session = profiler.last_session
    stages = stage_seconds(session.root_frame() if session else None)
    if html:
        out = RESULTS_DIR / f"profile_{re.sub(r'[^A-Za-z0-9]+', '_', label)}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(profiler.output_html(), encoding="utf-8")
        print(f"wrote {out}")
    lat = latency_summary(timings)
    per_request = {f"{k}_ms": v / len(questions) * 1000 for k, v in stages.items()}
    return {
        "variant": label,
        "p50_ms": lat["p50_ms"],
        "p95_ms": lat["p95_ms"],
        "mean_ms": lat["mean_ms"],
        **per_request,
    }


def add_synthetic(kb: Any, n: int) -> None:
    """Top the KB up to n synthetic SciFact-sentence chunks (idempotent across runs)."""
    from bench.hybrid import build_writes

    have = sum(1 for s in kb.sources() if s.source.startswith("synthetic/"))
    writes = build_writes(n, pool_size=300) if have * 40 < n else []
    with kb.writer_lock():
        for start in range(0, len(writes), 250):
            kb.write_documents(writes[start : start + 250])
        kb.persist()
    print(f"KB {kb.name}: {kb.count()} chunks", flush=True)


def _drain(stream: Iterable[Any]) -> Any:
    last = None
    for last in stream:  # noqa: B007 - the final item is the Answer
        pass
    return last


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.serve import open_sample_kb, sample_questions
    from ingest import embed
    from ingest.kb import open_kb
    from rag_app.pipeline import ask_stream
    from rag_app.serving.llm import chat_model
    from rag_app.settings import Settings

    settings = Settings()
    embed.VECTOR_CACHE_SIZE = 0  # the "before" variants: no text->vector cache
    kb = open_sample_kb(settings, KB_NAME)  # loads the embedder once (not profiled)
    add_synthetic(kb, args.kb_chunks)
    llm = chat_model(settings)
    base = sample_questions()
    questions = [base[i % len(base)] for i in range(args.requests)]
    # warm-up on every question: vLLM's prefix cache then serves all variants alike
    for question in dict.fromkeys(questions):
        _drain(ask_stream(question, kb, mode=args.mode, settings=settings, llm=llm))

    def by_name(q: str) -> Any:
        return _drain(ask_stream(q, KB_NAME, mode=args.mode, settings=settings))

    def reload_model(q: str) -> Any:
        embed._CACHE.clear()  # private on purpose: reproduces the state before the cache
        return by_name(q)

    def reuse(q: str) -> Any:
        return _drain(ask_stream(q, kb, mode=args.mode, settings=settings, llm=llm))

    # each cached variant gets its own empty cache: no variant profits from another's warm-up
    model = embed.load_embedder(settings)
    caches = [model.with_cache(20_000) for _ in range(2)]
    cached_kbs = [open_kb(KB_NAME, settings, embeddings=c) for c in caches]

    def reuse_cached(q: str) -> Any:
        return _drain(ask_stream(q, cached_kbs[0], mode=args.mode, settings=settings, llm=llm))

    def one_thread(q: str) -> Any:
        with library_threads(torch_n=1, faiss_n=1):
            return _drain(ask_stream(q, cached_kbs[1], mode=args.mode, settings=settings, llm=llm))

    variants = (
        ("reload model", reload_model),
        ("by name", by_name),
        ("reuse", reuse),
        ("reuse + embedding cache", reuse_cached),
        ("reuse + embedding cache + 1 thread", one_thread),
    )
    rows = [profile_variant(label, fn, questions, args.html) for label, fn in variants]
    cache = {"texts": caches[0].requested, "encoded": caches[0].encoded}
    print(f"embedding cache (variant 4): {cache['texts']} texts, {cache['encoded']} encoded")
    for prev, row in zip(rows, rows[1:], strict=False):
        row["saved_vs_previous_ms"] = prev["mean_ms"] - row["mean_ms"]
    columns = [
        "variant",
        "p50_ms",
        "p95_ms",
        "mean_ms",
        "saved_vs_previous_ms",
        *(f"{s}_ms" for s in STAGES),
    ]
    print_section(
        "Answering path per request, each fix on top of the previous (ms/request)", rows, columns
    )
    params = {
        **vars(args),
        "kb": KB_NAME,
        "kb_chunks_total": kb.count(),
        "llm_base_url": settings.llm_base_url,
        "embedding_cache": cache,
    }
    path = write_results("profile_answer", {"variants": rows}, params)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
