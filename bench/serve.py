"""Serving benchmark: rag_app.ask_stream over the sample KB at 1/8/32 concurrent users, through
the vLLM server (ours) vs a transformers pipeline in-process (LangChain HuggingFacePipeline).

Both run the same answering path (retrieval, prompt, LLM, grounding, verification); only the
chat model differs. Run from the repository root: `python -m bench.serve` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models are local; never reach for the hub

from bench.common import latency_summary, library_threads, print_section, write_results  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples" / "docs"
QUESTIONS = REPO_ROOT / "tests" / "sample_questions.json"
KB_NAME = "bench-samples"


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=_ints, default=[1, 8, 32], help="concurrency levels (threads)")
    p.add_argument(
        "--requests",
        type=int,
        default=0,
        help="requests per level (0 = max(8, 2 x users): every user asks at least twice)",
    )
    p.add_argument("--max-tokens", type=int, default=64, help="generation cap, both systems")
    p.add_argument("--mode", default="direct", choices=["direct", "cot", "cited"])
    p.add_argument(
        "--hf-model",
        default="",
        help="HF folder for the in-process pipeline (default: `rag model prepare` folder)",
    )
    p.add_argument("--skip-hf", action="store_true", help="only measure ours (no ratio)")
    p.add_argument("--preset", default="", help="model preset (default: RAG_LLM_PRESET)")
    p.add_argument(
        "--dtypes",
        type=lambda text: [d for d in text.split(",") if d],
        default=[],
        help="e.g. bfloat16,float32: start the local server once per dtype on --port and "
        "measure ours only (results in bench/results/serve_dtype.json)",
    )
    p.add_argument("--port", type=int, default=8790, help="port of the --dtypes servers")
    p.add_argument(
        "--hf-users",
        type=_ints,
        default=None,
        help="concurrency levels for the pipeline (default: same as --users)",
    )
    return p.parse_args(argv)


class TokenCounter:
    """LangChain callback: counts generated tokens with the model's tokenizer (same for both)."""

    def __init__(self, tokenizer: Any) -> None:
        from langchain_core.callbacks import BaseCallbackHandler

        counter = self

        class Handler(BaseCallbackHandler):
            def on_llm_end(self, response: Any, **kwargs: Any) -> None:
                text = "".join(g.text for gens in response.generations for g in gens)
                counter.add(len(tokenizer(text, add_special_tokens=False)["input_ids"]))

        self.handler = Handler()
        self.lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.total += n

    def take(self) -> int:
        with self.lock:
            total, self.total = self.total, 0
        return total


def sample_questions(path: Path = QUESTIONS) -> list[str]:
    """Single-turn questions about samples/ (the follow-ups need a history: left out)."""
    items = json.loads(path.read_text(encoding="utf-8"))
    return [q["question"] for q in items if q.get("kind") == "single"]


def open_sample_kb(settings: Any, name: str = KB_NAME) -> Any:
    """The sample KB in the configured data dir, (re)ingested incrementally from samples/."""
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths

    kb = open_kb(name, settings, create=True)
    summary = ingest_paths([SAMPLES], kb)
    print(f"sample KB {name}: {kb.count()} chunks ({summary.added} documents added)", flush=True)
    return kb


def one_request(question: str, kb: Any, settings: Any, llm: Any, mode: str) -> dict[str, Any]:
    """Time one ask_stream call: first streamed text delta and the final Answer."""
    from rag_app.pipeline import ask_stream
    from rag_app.records import Answer

    start, first = time.perf_counter(), None
    final: Answer | None = None
    for item in ask_stream(question, kb, mode=mode, settings=settings, llm=llm):  # type: ignore[arg-type]
        if isinstance(item, Answer):
            final = item
        elif first is None and item:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    assert final is not None
    return {
        "total_s": total,
        "ttft_s": first if first is not None else total,
        "abstained": final.abstained,
    }


def run_level(
    users: int,
    n_requests: int,
    ask: Callable[[str], dict[str, Any]],
    questions: list[str],
    counter: TokenCounter,
) -> dict[str, Any]:
    """n_requests spread over `users` threads (closed loop); throughput and latency summary."""
    asked = [questions[i % len(questions)] for i in range(n_requests)]
    counter.take()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        results = list(pool.map(ask, asked))
    wall = time.perf_counter() - start
    tokens = counter.take()
    total = latency_summary([r["total_s"] for r in results])
    ttft = latency_summary([r["ttft_s"] for r in results])
    return {
        "users": users,
        "requests": n_requests,
        "wall_s": wall,
        "req_per_s": n_requests / wall,
        "gen_tok_per_s": tokens / wall,
        "tokens": tokens,
        "ttft_p50_s": ttft["p50_ms"] / 1000,
        "ttft_p95_s": ttft["p95_ms"] / 1000,
        "total_p50_s": total["p50_ms"] / 1000,
        "total_p95_s": total["p95_ms"] / 1000,
        "abstained": sum(r["abstained"] for r in results),
    }


def hf_chat_model(folder: str, max_tokens: int, callbacks: list[Any]) -> Any:
    """The tutorial path: transformers text-generation pipeline wrapped by LangChain."""
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    pipe = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=max_tokens,
        do_sample=False,
        return_full_text=False,
    )
    llm = HuggingFacePipeline(pipeline=pipe, model_id=folder)
    return ChatHuggingFace(llm=llm, tokenizer=tokenizer, callbacks=callbacks)


def measure(
    system: str,
    levels: list[int],
    requests: int,
    ask: Callable[[str], dict[str, Any]],
    questions: list[str],
    counter: TokenCounter,
) -> list[dict[str, Any]]:
    # warm-up: model loads, first connections; for the server also its prefix cache, so every
    # level sees the same cache state (the pipeline has no such cache: one question suffices)
    for question in questions if system.startswith("ours") else questions[:1]:
        ask(question)
    rows = []
    for users in levels:
        print(f"{system}: {users} users ...", flush=True)
        row = run_level(users, requests or max(8, 2 * users), ask, questions, counter)
        rows.append({"system": system, **row})
        print_section(f"{system} at {users} users", [rows[-1]])
    return rows


def ratios(ours: list[dict[str, Any]], hf: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_users = {r["users"]: r for r in hf}
    out = []
    for row in ours:
        base = by_users.get(row["users"])
        if base:
            out.append(
                {
                    "users": row["users"],
                    "req_per_s_ratio": row["req_per_s"] / base["req_per_s"],
                    "tok_per_s_ratio": row["gen_tok_per_s"] / max(base["gen_tok_per_s"], 1e-9),
                    "total_p95_ratio (hf/ours)": base["total_p95_s"] / row["total_p95_s"],
                    "ttft_p95_ratio (hf/ours)": base["ttft_p95_s"] / row["ttft_p95_s"],
                }
            )
    return out


def cpu_facts(settings: Any) -> dict[str, Any]:
    """The CPU flags that decide CPU serving speed, and the dtype `auto` picks from them."""
    from rag_app.serving.cpu import read_cpu_flags, reported_flags
    from rag_app.serving.launch import server_dtype

    auto = server_dtype(settings.model_copy(update={"llm_dtype": "auto"}))
    return {"cpu_flags": reported_flags(read_cpu_flags()), "auto_dtype": auto.dtype}


def measure_dtypes(
    args: argparse.Namespace, settings: Any, kb: Any, questions: list[str], counter: TokenCounter
) -> list[dict[str, Any]]:
    """One local server per dtype (started, measured, stopped), same model and questions."""
    from rag_app.serving import server
    from rag_app.serving.llm import chat_model

    rows: list[dict[str, Any]] = []
    for dtype in args.dtypes:
        local = settings.model_copy(
            update={"llm_dtype": dtype, "llm_port": args.port, "llm_base_url": None}
        )
        print(f"starting vLLM with --dtype {dtype} on port {args.port} ...", flush=True)
        started = time.perf_counter()
        status = server.serve(local)
        startup_s = time.perf_counter() - started
        try:
            llm = chat_model(local, base_url=status.base_url, callbacks=[counter.handler])
            ask = functools.partial(one_request, kb=kb, settings=local, llm=llm, mode=args.mode)
            found = measure(f"ours ({dtype})", args.users, args.requests, ask, questions, counter)
        finally:
            server.stop(local)
        rows += [{**row, "dtype": dtype, "startup_s": startup_s} for row in found]
    return rows


def main_dtypes(args: argparse.Namespace, settings: Any) -> int:
    from transformers import AutoTokenizer

    from rag_app.serving.model import prepare_model
    from rag_app.serving.presets import preset_for

    folder = str(prepare_model(settings, progress=print).path)
    counter = TokenCounter(AutoTokenizer.from_pretrained(folder))
    kb, questions = open_sample_kb(settings), sample_questions()
    n = settings.answer_threads or None
    with library_threads(torch_n=n, faiss_n=n):
        rows = measure_dtypes(args, settings, kb, questions, counter)
    print_section("End-to-end answering (ask_stream) by dtype", rows)
    preset = preset_for(settings)[0]
    params = {**vars(args), "model": folder, "preset": preset, **cpu_facts(settings)}
    path = write_results("serve_dtype", {"runs": rows}, params)
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from transformers import AutoTokenizer

    from rag_app.serving.llm import chat_model, ensure_llm_endpoint
    from rag_app.serving.model import prepare_model
    from rag_app.settings import Settings

    update: dict[str, Any] = {"llm_max_tokens": args.max_tokens}
    if args.preset:
        update["llm_preset"] = args.preset
    settings = Settings(**update)
    if args.dtypes:
        return main_dtypes(args, settings)
    url = ensure_llm_endpoint(settings)  # starts the local vLLM server if no URL is configured
    print(f"LLM endpoint: {url}", flush=True)
    folder = args.hf_model or str(prepare_model(settings).path)
    counter = TokenCounter(AutoTokenizer.from_pretrained(folder))
    kb, questions = open_sample_kb(settings), sample_questions()
    ours_llm = chat_model(settings, base_url=url, callbacks=[counter.handler])
    # ours as `rag ask/chat/ui` run it: settings.answer_threads torch/FAISS threads (the
    # pipeline keeps the library defaults, as a tutorial would: its generation needs them)
    n = settings.answer_threads or None  # 0 = library default
    with library_threads(torch_n=n, faiss_n=n):
        rows = measure(
            "ours (vLLM server)",
            args.users,
            args.requests,
            lambda q: one_request(q, kb, settings, ours_llm, args.mode),
            questions,
            counter,
        )
    hf_rows: list[dict[str, Any]] = []
    if not args.skip_hf:
        hf_llm = hf_chat_model(folder, args.max_tokens, [counter.handler])
        hf_rows = measure(
            "in-process HF pipeline",
            args.hf_users or args.users,
            args.requests,
            lambda q: one_request(q, kb, settings, hf_llm, args.mode),
            questions,
            counter,
        )
    table = rows + hf_rows
    print_section("End-to-end answering (ask_stream) by concurrency", table)
    ratio_rows = ratios(rows, hf_rows)
    if ratio_rows:
        print_section("Ours vs in-process pipeline (ratio, >1 = ours better)", ratio_rows)
    params = {**vars(args), "llm_endpoint": url, "hf_model": folder, "kb_chunks": kb.count()}
    params |= cpu_facts(settings)
    path = write_results("serve", {"runs": table, "ratios": ratio_rows}, params)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
