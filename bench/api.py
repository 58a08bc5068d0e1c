"""HTTP API benchmark: N concurrent streaming clients against `rag serve` vs the same load
through the in-process `ask_stream`, in the same run, over the sample KB and the same vLLM.

Both answer with the same pipeline and model server; the API adds HTTP, SSE, auth and a
separate process. Time to first token is the first streamed draft token (in-process: the first
text delta of ask_stream; API: the first `rag_draft` delta). Run from the repository root:
`python -m bench.api` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models are local; never reach for the hub

from bench.common import latency_summary, library_threads, print_section, write_results  # noqa: E402
from bench.serve import KB_NAME, one_request, open_sample_kb, sample_questions  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 300.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=int, default=32, help="concurrent streaming clients")
    p.add_argument("--requests", type=int, default=0, help="requests per system (0 = 2 x users)")
    p.add_argument("--mode", default="direct", choices=["direct", "cot", "cited"])
    p.add_argument("--warmup", type=int, default=2, help="untimed requests before each system")
    p.add_argument("--max-tokens", type=int, default=64, help="generation cap, both systems")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(env_extra: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`rag serve` on a free port with RAG_* from `env_extra` only; ready when /healthz answers."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"HF_HUB_OFFLINE": "1", **env_extra})
    log = open(log_dir / f"serve-{port}.log", "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_app.cli", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"rag serve did not start; see {log.name}")


def start_api(settings: Any, url: str, max_tokens: int) -> tuple[subprocess.Popen[bytes], str]:
    """`rag serve` over the same data dir and vLLM server, on a free port; ready when /healthz."""
    env = {
        "RAG_DATA_DIR": str(settings.root),
        "RAG_LLM_BASE_URL": url,
        "RAG_LLM_MAX_TOKENS": str(max_tokens),
        "RAG_API_RATE_LIMIT": "0",
    }
    return start_serve(env, settings.run_dir)


def api_request(client: Any, base: str, key: str, question: str, mode: str) -> dict[str, Any]:
    """One streamed chat completion: first draft token, final record, and any error."""
    body = {
        "model": f"rag:{KB_NAME}:{mode}",
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    start, first, rag, error = time.perf_counter(), None, None, None
    with client.stream(
        "POST", f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        if response.status_code != 200:
            error = f"HTTP {response.status_code}: {response.read()[:200]!r}"
        for line in response.iter_lines() if error is None else ():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                error = event["error"]["message"]
                break
            delta = event["choices"][0]["delta"] if event["choices"] else {}
            if first is None and (delta.get("rag_draft") or delta.get("content")):
                first = time.perf_counter() - start
            rag = delta.get("rag", rag)
    total = time.perf_counter() - start
    if error is None and rag is None:
        error = "stream ended without the rag record"
    return {
        "total_s": total,
        "ttft_s": first if first is not None else total,
        "abstained": bool(rag and rag["abstained"]),
        "error": error,
    }


def run_load(
    system: str,
    users: int,
    n: int,
    ask: Callable[[str], dict[str, Any]],
    questions: list[str],
    warmup: int,
) -> dict[str, Any]:
    """n requests over `users` threads (closed loop); a raised exception counts as an error."""

    def safe(question: str) -> dict[str, Any]:
        try:
            return {"error": None, **ask(question)}
        except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal
            return {
                "total_s": float("nan"),
                "ttft_s": float("nan"),
                "abstained": False,
                "error": f"{type(exc).__name__}: {exc}",
            }

    for question in questions[:warmup]:  # warm-up: connections, the embedder's first call
        safe(question)
    asked = [questions[i % len(questions)] for i in range(n)]
    print(f"{system}: {n} requests over {users} clients ...", flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        results = list(pool.map(safe, asked))
    wall = time.perf_counter() - start
    ok = [r for r in results if r["error"] is None]
    errors = [r["error"] for r in results if r["error"] is not None]
    ttft = latency_summary([r["ttft_s"] for r in ok]) if ok else {}
    total = latency_summary([r["total_s"] for r in ok]) if ok else {}
    return {
        "system": system,
        "users": users,
        "requests": n,
        "errors": len(errors),
        "wall_s": wall,
        "req_per_s": len(ok) / wall,
        "ttft_p50_s": ttft.get("p50_ms", float("nan")) / 1000,
        "ttft_p95_s": ttft.get("p95_ms", float("nan")) / 1000,
        "total_p50_s": total.get("p50_ms", float("nan")) / 1000,
        "total_p95_s": total.get("p95_ms", float("nan")) / 1000,
        "abstained": sum(r["abstained"] for r in ok),
        "first_errors": sorted(set(errors))[:3],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import httpx

    from rag_app.api.keys import KeyStore
    from rag_app.serving.llm import chat_model, ensure_llm_endpoint
    from rag_app.settings import Settings

    settings = Settings().model_copy(update={"llm_max_tokens": args.max_tokens})
    url = ensure_llm_endpoint(settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    print(f"LLM endpoint: {url}", flush=True)
    kb, questions = open_sample_kb(settings), sample_questions()
    n = args.requests or 2 * args.users
    llm = chat_model(settings, base_url=url)
    threads = settings.answer_threads or None
    with library_threads(torch_n=threads, faiss_n=threads):  # as `rag serve` runs (limit_threads)
        inproc = run_load(
            "in-process ask_stream",
            args.users,
            n,
            lambda q: one_request(q, kb, settings, llm, args.mode),
            questions,
            args.warmup,
        )
    print_section("in-process", [inproc])
    keys = KeyStore.open(settings)
    record, key = keys.create("bench-api", "reader", [KB_NAME])
    proc, base = start_api(settings, url, args.max_tokens)
    try:
        limits = httpx.Limits(max_connections=args.users + 4)
        with httpx.Client(timeout=600, limits=limits) as client:
            api = run_load(
                "rag serve (HTTP, SSE)",
                args.users,
                n,
                lambda q: api_request(client, base, key, q, args.mode),
                questions,
                args.warmup,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        keys.revoke(record.id)
    rows = [inproc, api]
    print_section(f"{args.users} concurrent streaming clients, {n} requests each", rows)
    ratio = {
        "req_per_s_ratio (api / in-process)": api["req_per_s"] / inproc["req_per_s"],
        "ttft_p50_ratio (api / in-process)": api["ttft_p50_s"] / inproc["ttft_p50_s"],
        "target": ">= 0.9 throughput, 0 errors",
    }
    print_section("API vs in-process", [ratio])
    params = {**vars(args), "requests": n, "llm_endpoint": url, "kb_chunks": kb.count()}
    path = write_results("api", {"runs": rows, "ratio": ratio}, params)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
