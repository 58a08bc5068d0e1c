"""Profile the answering path (pyinstrument) the way `rag chat` calls it, before and after reuse.

"before": every question calls ask_stream(question, kb=<name>) with no llm, as the `rag chat`
REPL does per turn, so each request re-opens the KB (manifest, SQLite, FAISS file read) and builds
a new chat client (a /v1/models probe and a fresh HTTP connection pool).
"after": the KB and the chat model are opened once and passed in (what the Streamlit UI does
with st.cache_resource). Both run in the same process on the same questions.
Run from the repository root: `python -m bench.profile_answer` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bench.common import RESULTS_DIR, latency_summary, print_section, write_results

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
    p = argparse.ArgumentParser(prog="python -m bench.profile_answer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10, help="questions per variant")
    p.add_argument("--mode", default="direct", choices=["direct", "cot", "cited"])
    p.add_argument("--html", action="store_true",
                   help="also save pyinstrument HTML reports to bench/results/")
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


def profile_variant(label: str, call: Callable[[str], Any], questions: list[str],
                    html: bool) -> dict[str, Any]:
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
        out = RESULTS_DIR / f"profile_{label}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(profiler.output_html(), encoding="utf-8")
        print(f"wrote {out}")
    lat = latency_summary(timings)
    per_request = {f"{k}_ms": v / len(questions) * 1000 for k, v in stages.items()}
    return {"variant": label, "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"],
            "mean_ms": lat["mean_ms"], **per_request}


def _drain(stream: Iterable[Any]) -> Any:
    last = None
    for last in stream:  # noqa: B007 - the final item is the Answer
        pass
    return last


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.serve import KB_NAME, open_sample_kb, sample_questions
    from rag_app.answer import ask_stream
    from rag_app.llm import chat_model
    from rag_app.settings import Settings

    settings = Settings()
    kb = open_sample_kb(settings)  # ingests samples/ once; loads the embedder (not profiled)
    llm = chat_model(settings)
    base = sample_questions()
    questions = [base[i % len(base)] for i in range(args.requests)]
    _drain(ask_stream(questions[0], kb, mode=args.mode, settings=settings, llm=llm))  # warm-up

    def before(q: str) -> Any:
        return _drain(ask_stream(q, KB_NAME, mode=args.mode, settings=settings))

    def after(q: str) -> Any:
        return _drain(ask_stream(q, kb, mode=args.mode, settings=settings, llm=llm))

    rows = [profile_variant("before", before, questions, args.html),
            profile_variant("after", after, questions, args.html)]
    columns = ["variant", "p50_ms", "p95_ms", "mean_ms", *(f"{s}_ms" for s in STAGES)]
    print_section("Answering path per request: before/after reuse (stage = ms per request)",
                  rows, columns)
    saved = rows[0]["mean_ms"] - rows[1]["mean_ms"]
    print(f"reuse saves {saved:.0f} ms per request ({saved / rows[0]['mean_ms']:.0%})")
    params = {**vars(args), "kb": KB_NAME, "llm_base_url": settings.llm_base_url}
    path = write_results("profile_answer", {"variants": rows, "saved_ms": saved}, params)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

