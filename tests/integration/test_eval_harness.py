"""The eval harness against the real stack: MiniLM KB on disk, real vLLM, the `rag eval` CLI.

Small on purpose (CI fits in 90 min on 2 cores): 12 SQuAD paragraphs, 6 questions per run,
a 40-document BEIR slice of SciFact, and the real offline judge on the shipped labelled set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_app.cli import app
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SQUAD = SHARED_DATA / "squad2" / "dev-v2.0.part-a.json"
SCIFACT = SHARED_DATA / "scifact"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, vllm_server: str) -> dict[str, str]:
    data = tmp_path_factory.mktemp("eval-data")
    return {"RAG_DATA_DIR": str(data), "RAG_LLM_BASE_URL": vllm_server, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def squad_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 paragraphs of the first article, in the official schema."""
    article = json.loads(SQUAD.read_text())["data"][0]
    path = tmp_path_factory.mktemp("squad") / "slice.json"
    sliced = {"version": "v2.0", "data": [{**article, "paragraphs": article["paragraphs"][:12]}]}
    path.write_text(json.dumps(sliced))
    return path


def rag(env: dict[str, str], *args: str) -> dict:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_squad_run_resume_report_compare(
    env: dict[str, str], squad_slice: Path, tmp_path: Path
) -> None:
    common = ["--dataset", str(squad_slice), "--seed", "3", "--concurrency", "6", "--json"]
    direct = rag(env, "eval", "run", *common, "--limit", "4", "--out", str(tmp_path / "d"))
    assert direct["questions"] == 4 and direct["errors"] == 0
    # Resume: a larger limit with the same --out answers only the new questions.
    direct = rag(env, "eval", "run", *common, "--limit", "6", "--out", str(tmp_path / "d"))
    assert direct["questions"] == 6
    lines = (tmp_path / "d" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6  # the first 4 were not re-asked
    answer = direct["answer"]
    assert 0 <= answer["f1"] <= 100 and answer["total"] == 6
    assert direct["retrieval"]["recall@10"] > 0.5  # the gold paragraph is among 12
    assert direct["cost"]["latency_p50_s"] > 0
    base = rag(
        env,
        "eval",
        "run",
        *common,
        "--limit",
        "6",
        "--pipeline",
        "langchain-stuff",
        "--out",
        str(tmp_path / "s"),
    )
    assert base["questions"] == 6 and base["errors"] == 0
    assert (tmp_path / "s" / "report.md").read_text().count("![") == 3
    cmp = rag(env, "eval", "compare", str(tmp_path / "s"), str(tmp_path / "d"), "--json")
    assert cmp["paired_questions"] == 6
    assert {d["metric"] for d in cmp["deltas"]} >= {"exact", "f1", "latency_s"}


@pytest.fixture(scope="module")
def beir_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 judged SciFact queries, their relevant abstracts and 32 other abstracts (BEIR layout)."""
    qrels = (SCIFACT / "qrels" / "train.tsv").read_text().splitlines()[1:9]
    query_ids = {line.split("\t")[0] for line in qrels}
    relevant = {line.split("\t")[1] for line in qrels}
    corpus = (SCIFACT / "corpus.jsonl").read_text().splitlines()
    keep = [x for x in corpus if json.loads(x)["_id"] in relevant]
    keep += [x for x in corpus[:100] if json.loads(x)["_id"] not in relevant][:32]
    queries = (SCIFACT / "queries.jsonl").read_text().splitlines()
    root = tmp_path_factory.mktemp("beir")
    (root / "qrels").mkdir()
    (root / "corpus.jsonl").write_text("\n".join(keep) + "\n")
    (root / "queries.jsonl").write_text(
        "\n".join(q for q in queries if json.loads(q)["_id"] in query_ids) + "\n"
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\r\n" + "\r\n".join(qrels))
    return root


def test_beir_retrieval_slice(env: dict[str, str], beir_slice: Path, tmp_path: Path) -> None:
    """BM25, dense and our hybrid each score nDCG@10 on the slice; the KB is built once."""
    n_queries = len((beir_slice / "queries.jsonl").read_text().splitlines())
    ndcg = {}
    for retriever in ("bm25", "dense", "hybrid"):
        out = rag(
            env,
            "eval",
            "run",
            "--dataset",
            str(beir_slice),
            "--format",
            "beir",
            "--retriever",
            retriever,
            "--out",
            str(tmp_path / retriever),
            "--json",
        )
        assert out["questions"] == n_queries and out["errors"] == 0
        ndcg[retriever] = out["retrieval"]["ndcg@10"]
    assert all(v > 0.3 for v in ndcg.values()), ndcg  # 40 documents: far above chance


def test_judge_check_with_minilm(env: dict[str, str]) -> None:
    out = rag(env, "eval", "judge-check", "--dataset", str(SQUAD), "--limit", "70", "--json")
    assert out["items"] == 70
    assert out["unsupported"]["f1"] > 0.5  # the offline judge must beat a coin flip clearly


def test_llm_judge_through_openai_endpoint(env: dict[str, str]) -> None:
    """The LLM judge renders prompts/judge.jinja and gets schema-valid labels from vLLM."""
    out = rag(
        env,
        "eval",
        "judge-check",
        "--dataset",
        str(SQUAD),
        "--judge",
        "llm",
        "--judge-url",
        env["RAG_LLM_BASE_URL"],
        "--limit",
        "6",
        "--json",
    )
    assert out["items"] == 6 and out["judge_errors"] == 0
    assert set(out["predicted_labels"]) <= {"supported", "unsupported", "contradicted"}
