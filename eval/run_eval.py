"""`rag eval run` in code: load, sample, build/reuse the KB, pick a pipeline, run, summarise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.datasets import Dataset, load_dataset
from eval.runner import RunConfig, execute, prepare_out_dir, read_rows, select, write_atomic
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from eval.judge import ClaimJudge
    from eval.runner import Worker

SUMMARY = "summary.json"


def make_judge(
    name: str, settings: Settings, judge_url: str | None = None, judge_model: str = ""
) -> ClaimJudge:
    """'offline' (default; MiniLM + lexical rules) or 'llm' (any OpenAI-compatible endpoint)."""
    from eval.judge import LLMJudge, OfflineJudge

    if name == "offline":
        from ingest.embed import load_embedder

        return OfflineJudge(load_embedder(settings))
    if name == "llm":
        from rag_app.serving.llm import chat_model

        overrides: dict[str, Any] = {"temperature": 0.0, "max_tokens": 200}
        if judge_url:
            overrides["base_url"] = judge_url
        if judge_model:
            overrides["model"] = judge_model
        return LLMJudge(chat_model(settings, **overrides))
    from rag_app.errors import ConfigError

    raise ConfigError(f"--judge {name!r}: use 'offline' or 'llm'")


def build_worker(
    config: RunConfig,
    dataset: Dataset,
    settings: Settings,
    judge: ClaimJudge,
    llm: BaseChatModel | None,
    show_progress: bool,
    embeddings: Embeddings | None = None,
) -> Worker:
    """The worker for this run's pipeline (building or reusing what it answers from)."""
    from eval import workers
    from eval.kb_build import ensure_kb

    if config.format == "beir":
        kb = ensure_kb(dataset, settings, config.kb or None, show_progress, embeddings)
        return workers.retrieval_worker(dataset, kb, settings, config.retriever)
    if config.pipeline == "langchain-stuff":
        from eval.baseline import StuffPipeline, build_store, dataset_chunks
        from ingest.embed import load_embedder
        from rag_app.serving.llm import chat_model

        emb = embeddings or load_embedder(settings)
        store = build_store(dataset_chunks(dataset, emb, settings), emb)
        pipeline = StuffPipeline(store, llm or chat_model(settings), k=settings.top_k)
        return workers.stuff_worker(dataset, pipeline, judge)
    kb = ensure_kb(dataset, settings, config.kb or None, show_progress, embeddings)
    return workers.rag_worker(dataset, kb, settings, config.mode, judge, llm)


def run_eval(
    config: RunConfig,
    out_dir: Path,
    settings: Settings,
    concurrency: int = 8,
    judge: ClaimJudge | None = None,
    llm: BaseChatModel | None = None,
    show_progress: bool = True,
    stop_after: int | None = None,
    embeddings: Embeddings | None = None,
) -> dict[str, Any]:
    """Run (or resume) an evaluation into out_dir; returns the summary (also summary.json)."""
    from eval.summary import read_segments, summarize

    dataset = load_dataset(Path(config.dataset), config.format)
    config = config.model_copy(
        update={"dataset_sha256": dataset.digest, "kb": config.kb or dataset.kb_name}
    )
    prepare_out_dir(out_dir, config)
    questions = select(dataset, config.limit, config.seed)
    judge = judge or make_judge(config.judge, settings)
    worker = build_worker(config, dataset, settings, judge, llm, show_progress, embeddings)
    execute(questions, worker, out_dir, concurrency, show_progress, stop_after)
    wanted = {q.qid for q in questions}
    rows = [r for r in read_rows(out_dir) if r["id"] in wanted]
    summary = summarize(rows, read_segments(out_dir))
    summary["config"] = config.model_dump(mode="json")
    write_atomic(out_dir / SUMMARY, json.dumps(summary, indent=2))
    return summary
