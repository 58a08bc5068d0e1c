"""Eval workers: turn one question into one scored result row, for each pipeline and retriever."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from eval.datasets import Dataset, Question
from eval.judge import ClaimJudge
from eval.kb_build import Retriever, ranked_sources
from eval.retrieval_metrics import retrieval_scores
from eval.runner import Worker
from eval.scoring import guess_text, prediction_text, score_result
from rag_app.records import Answer, Mode
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from eval.baseline import StuffPipeline
    from ingest.kb import KnowledgeBase

RANK_DEPTH = 10  # retrieval metrics are @10


def answer_row(question: Question, answer: Answer, scores: dict[str, Any]) -> dict[str, Any]:
    """The JSONL row: everything needed to re-score, report and compare without re-running."""
    return {
        "id": question.qid,
        "question": question.question,
        "gold": list(question.answers),
        "has_answer": question.has_answer,
        "gold_sources": list(question.gold_sources),
        "answer": answer.text,
        "prediction": prediction_text(answer),
        "abstained": answer.abstained or answer.kind == "tentative",  # strict
        "kind": answer.kind,
        "p_correct": answer.p_correct,
        "span": guess_text(answer),
        "signals": answer.signals,
        "mode": answer.mode,
        "citations": [c.model_dump(mode="json") for c in answer.citations],
        "hits": [h.chunk.source for h in answer.hits],
        "scores": scores,
        "timings": answer.timings.model_dump(mode="json"),
        "usage": answer.usage.model_dump(mode="json"),
        "error": None,
    }


def rag_worker(
    dataset: Dataset,
    kb: KnowledgeBase,
    settings: Settings,
    mode: Mode,
    judge: ClaimJudge,
    llm: BaseChatModel | None,
) -> Worker:
    """Our pipeline: rag_app.answering.answer.ask, the same call the UI and CLI make."""
    from rag_app.pipeline import ask

    def work(question: Question) -> dict[str, Any]:
        answer = ask(question.question, kb=kb, mode=mode, settings=settings, llm=llm)
        ranked = ranked_sources(question.question, kb, settings, "hybrid", RANK_DEPTH)
        scores = score_result(question, answer, judge, ranked, dataset.qrels.get(question.qid))
        return answer_row(question, answer, scores)

    return work


def stuff_worker(dataset: Dataset, pipeline: StuffPipeline, judge: ClaimJudge) -> Worker:
    """The LangChain baseline, scored identically."""

    def work(question: Question) -> dict[str, Any]:
        answer = pipeline.ask(question.question)
        ranked = [c.source for c in pipeline.search(question.question, RANK_DEPTH)]
        scores = score_result(question, answer, judge, ranked, dataset.qrels.get(question.qid))
        return answer_row(question, answer, scores)

    return work


def retrieval_worker(
    dataset: Dataset, kb: KnowledgeBase, settings: Settings, retriever: Retriever
) -> Worker:
    """Retrieval-only (BEIR): rank the corpus for the query and score it against the qrels."""

    def work(question: Question) -> dict[str, Any]:
        started = time.perf_counter()
        ranked = ranked_sources(question.question, kb, settings, retriever, depth=4 * RANK_DEPTH)
        seconds = time.perf_counter() - started
        relevant = dataset.qrels.get(question.qid, {})
        return {
            "id": question.qid,
            "question": question.question,
            "gold_sources": sorted(relevant),
            "hits": ranked[: 4 * RANK_DEPTH],
            "scores": retrieval_scores(ranked, relevant, ks=(1, 5, 10, 20)),
            "timings": {"retrieval_s": seconds, "total_s": seconds},
            "error": None,
        }

    return work
