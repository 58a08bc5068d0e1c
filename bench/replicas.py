"""Benchmark: requests/s of 1 vs 2 `rag serve` replicas on one Postgres (store = postgres).

Each replica is a real `rag serve` process with its own data dir; the knowledge base (the sample
documents), the API key and all state live in one embedded Postgres (as `rag db start` runs it).
The load is `POST /v1/search` (embed the question, hybrid retrieval in Postgres, passages with
their sources) from C concurrent clients, spread round robin over the replicas as an HTTP load
balancer would; no LLM is involved, so this measures the API tier that replicas multiply (an
answer's seconds are the model server's, which vllm-router spreads, see docs/scale.md).

After a warm-up on both replicas, phases run 1, 2, 2, 1 replicas for --seconds each, so a
drift (other processes' load, caches still warming) hits both alike. On this project's 2-core
machine every replica and Postgres share the same two cores: the numbers say what a second
process buys on one host, not what a second host would.

    .venv/bin/python -m bench.replicas                  # 8 clients, 4 phases x 30 s
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.api import start_serve  # noqa: E402
from bench.common import latency_summary, machine_info, markdown_table, write_results  # noqa: E402
from bench.pg_vectors import start_postgres  # noqa: E402
from bench.serve import sample_questions  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
KB = "samples"


def start_replica(data_dir: Path, db_url: str) -> tuple[Any, str]:
    """`rag serve` on a free port over the shared database; ready when /healthz answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_STORE": "postgres",
        "RAG_DATABASE_URL": db_url,
        "RAG_API_RATE_LIMIT": "0",
        "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",  # search needs no model: never called
    }
    return start_serve(env, data_dir)


def load(urls: list[str], key: str, questions: list[str], clients: int, seconds: float) -> dict:
    """C client threads for `seconds`, requests round robin over `urls`: rps and latency."""
    import httpx

    turn = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=60) as http:
            j = i
            while time.monotonic() < stop:
                with lock:
                    url = urls[next(turn) % len(urls)]
                # a new question text each time: the replica's embedding cache must not answer
                query = f"{questions[j % len(questions)]} (request {j})"
                body = {"kb": KB, "query": query, "k": 5}
                j += clients
                started = time.perf_counter()
                response = http.post(f"{url}/v1/search", json=body, headers=headers)
                took = time.perf_counter() - started
                with lock:
                    if response.status_code == 200 and response.json().get("hits"):
                        latencies.append(took)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    begun = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - begun
    summary = latency_summary(latencies)
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "requests/s": len(latencies) / wall,
        "p50 ms": summary["p50_ms"],
        "p95 ms": summary["p95_ms"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of warm-up load")
    parser.add_argument("--name", default="replicas", help="bench/results/NAME.json")
    args = parser.parse_args(argv)

    from pydantic import SecretStr

    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths
    from rag_app.api.pg_keys import PgKeyStore
    from rag_app.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    server = start_postgres(root / "postgres")
    procs: list[Any] = []
    try:
        url = server.url()
        settings = Settings(data_dir=root / "setup", store="postgres", database_url=SecretStr(url))
        kb = open_kb(KB, settings, create=True)
        added = ingest_paths([REPO / "samples" / "docs"], kb).added
        kb.close()
        _, key = PgKeyStore.open(settings).create("bench", "reader", [KB])
        print(f"{added} sample documents in Postgres; starting 2 replicas ...", flush=True)
        for name in ("replica-a", "replica-b"):
            procs.append(start_replica(root / name, url))
        urls = [base for _, base in procs]
        questions = sample_questions()
        # warm-up on both: models loaded, Postgres' buffers and each runtime's first runs done
        # (a 5 s warm-up left the first phase at half the rate of the later ones)
        load(urls, key, questions, args.clients, args.warmup)
        rows = []
        for phase, n in enumerate((1, 2, 2, 1), 1):  # ABBA: a linear drift hits both alike
            print(f"phase {phase}: {n} replica(s), {args.seconds:.0f} s ...", flush=True)
            result = load(urls[:n], key, questions, args.clients, args.seconds)
            rows.append(
                {"phase": phase, "replicas": n, **result}
                | {"load avg 1m": round(os.getloadavg()[0], 2)}
            )
        by_n = {n: sum(r["requests/s"] for r in rows if r["replicas"] == n) / 2 for n in (1, 2)}
        print(markdown_table(rows))
        print(
            f"\nrequests/s, mean of 2 phases: 1 replica {by_n[1]:.1f}, 2 replicas "
            f"{by_n[2]:.1f} (ratio {by_n[2] / by_n[1]:.2f})"
        )
        summary = {"rows": rows, "rps": by_n, "ratio_2_vs_1": by_n[2] / by_n[1]}
        summary["cores"] = machine_info().get("usable_cores")
        path = write_results(args.name, summary, vars(args))
        print(f"wrote {path}")
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        server.stop()


if __name__ == "__main__":
    main()
