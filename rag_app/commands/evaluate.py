"""CLI commands (eval run/score/report/compare/judge-check); heavy imports stay inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from eval.runner import RunConfig

eval_app = typer.Typer(
    help="Evaluate answers and retrieval on SQuAD 2.0, BEIR or JSONL; report and compare runs.",
    no_args_is_help=True,
)
DEFAULT_SQUAD = Path("../shared/data/squad2/dev-v2.0.part-a.json")


def _run_config(values: dict[str, object]) -> RunConfig:
    """Validated run options; a bad value becomes one line naming the option."""
    from pydantic import ValidationError

    from eval.runner import RunConfig
    from rag_app.errors import ConfigError

    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"rag eval run --{err['loc'][0]}: {err['msg']}") from exc


@eval_app.command("run")
def run(
    dataset: Path | None = typer.Option(
        None, "--dataset", help="Dataset file (SQuAD JSON, JSONL) or BEIR folder."
    ),
    golden: Path | None = typer.Option(
        None,
        "--golden",
        help="Golden set (CSV/JSONL: question, expected, source?) asked of the existing --kb; "
        "results go to <data_dir>/quality/<kb>/runs/ (the UI's quality page).",
    ),
    fmt: str = typer.Option("squad2", "--format", help="squad2 | beir | jsonl."),
    mode: str = typer.Option("direct", "--mode", help="Answer mode: direct | cot | cited | agent."),
    pipeline: str = typer.Option(
        "rag", "--pipeline", help="rag (rag_app.ask) | langchain-stuff (stock LangChain baseline)."
    ),
    retriever: str = typer.Option(
        "hybrid", "--retriever", help="BEIR only: bm25 | dense | hybrid (our RRF fusion)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Sample this many questions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the question sample."),
    concurrency: int = typer.Option(8, "--concurrency", help="Questions in flight at once."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Run folder (default runs/<format>-<pipeline>-<mode>); reuse it to resume.",
    ),
    kb: str = typer.Option("", "--kb", help="KB name (default: named from the dataset's hash)."),
    judge: str = typer.Option("offline", "--judge", help="Claim judge: offline | llm."),
    judge_url: str = typer.Option(
        "", "--judge-url", help="OpenAI-compatible URL of the LLM judge."
    ),
    judge_model: str = typer.Option("", "--judge-model", help="Model name of the LLM judge."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.md + PNGs after."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON document."),
) -> None:
    """Answer (or, for BEIR, retrieve for) sampled questions, score them, write results.jsonl.

    Re-running with the same --out skips the questions already done (resume)."""
    if golden is not None:
        from rag_app.commands.golden import run_golden_cli

        return run_golden_cli(golden, kb, mode, concurrency, as_json)
    if dataset is None:
        from rag_app.errors import ConfigError

        raise ConfigError("rag eval run: give --dataset FILE, or --golden FILE --kb NAME")
    from eval.report import write_report
    from eval.run_eval import make_judge, run_eval
    from ingest.embed import limit_threads
    from rag_app.settings import get_settings

    settings = get_settings()
    limit_threads(settings)
    config = _run_config(
        {
            "dataset": str(dataset.resolve()),
            "format": fmt,
            "mode": mode,
            "pipeline": pipeline,
            "retriever": retriever,
            "judge": judge,
            "limit": limit,
            "seed": seed,
            "kb": kb,
        }
    )
    out = out or Path("runs") / (
        f"{fmt}-{retriever}" if fmt == "beir" else f"{fmt}-{pipeline}-{mode}"
    )
    the_judge = (
        make_judge(judge, settings, judge_url or None, judge_model) if fmt != "beir" else None
    )
    summary = run_eval(config, out, settings, concurrency, the_judge, show_progress=not as_json)
    if report:
        summary["report"] = str(write_report(out))
    typer.echo(json.dumps(summary, indent=None if as_json else 2))


@eval_app.command("score")
def score(
    dataset: Path = typer.Option(DEFAULT_SQUAD, "--dataset", help="SQuAD 2.0 JSON file."),
    predictions: Path = typer.Option(
        ..., "--predictions", help="JSON {question id: answer, '' = no answer}."
    ),
) -> None:
    """Score an official-format predictions file; prints the official metric names as JSON."""
    from eval.datasets import load_squad2
    from eval.squad_metrics import score_predictions
    from rag_app.errors import ConfigError

    try:
        preds = json.loads(predictions.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--predictions {predictions}: unreadable JSON ({exc})") from exc
    if not isinstance(preds, dict):
        raise ConfigError(f"--predictions {predictions}: need a JSON object {{id: answer}}")
    gold = {q.qid: q.answers for q in load_squad2(dataset).questions}
    typer.echo(json.dumps(score_predictions(gold, preds), indent=2))


@eval_app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="Folder of a `rag eval run`.")) -> None:
    """Write RUN_DIR/report.md with metric tables and PNG plots."""
    from eval.report import write_report

    typer.echo(str(write_report(run_dir)))


@eval_app.command("compare")
def compare_cmd(
    run_a: Path = typer.Argument(..., help="Baseline run folder (A)."),
    run_b: Path = typer.Argument(..., help="Candidate run folder (B)."),
    samples: int = typer.Option(2000, "--samples", help="Bootstrap resamples."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Metric deltas B-A on the shared questions with bootstrap 95% CIs, and flipped questions."""
    from eval.compare import compare_runs, format_compare

    result = compare_runs(run_a, run_b, samples)
    typer.echo(json.dumps(result, indent=2) if as_json else format_compare(result))


@eval_app.command("judge-check")
def judge_check_cmd(
    dataset: Path = typer.Option(
        DEFAULT_SQUAD, "--dataset", help="SQuAD 2.0 JSON the set is built from."
    ),
    spec: Path | None = typer.Option(None, "--spec", help="Labelled-set spec (default: shipped)."),
    judge: str = typer.Option("offline", "--judge", help="offline | llm."),
    judge_url: str = typer.Option(
        "", "--judge-url", help="OpenAI-compatible URL of the LLM judge."
    ),
    judge_model: str = typer.Option("", "--judge-model", help="Model name of the LLM judge."),
    limit: int | None = typer.Option(None, "--limit", help="Check only the first N claims."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Score the claim judge against labelled claims (precision/recall/F1 of 'unsupported')."""
    from eval.judge_check import check, format_check
    from eval.judge_set import load_set
    from eval.run_eval import make_judge
    from ingest.embed import limit_threads
    from rag_app.settings import get_settings

    limit_threads(get_settings())
    items = load_set(dataset, spec)[:limit]
    result = check(make_judge(judge, get_settings(), judge_url or None, judge_model), items)
    typer.echo(json.dumps(result, indent=2) if as_json else format_check(result))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.add_typer(eval_app, name="eval")
