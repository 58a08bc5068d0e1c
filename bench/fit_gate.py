"""Fit the answer gate of one model preset from `rag eval run` results (gate off), with CV.

    RAG_ANSWER_GATE=off RAG_LLM_PRESET=P rag eval run --dataset SQUAD --limit 500 --seed 0 --out R
    python -m bench.fit_gate R [R2 ...] --preset P [--write]

Each row whose answer was a grounded span carries the gate's signals and `span_f1` (the span's
SQuAD F1 against the gold); label = span_f1 >= 0.5. A standardised logistic regression
(scikit-learn) is scored by 5-fold stratified cross-validation: AUROC, and SQuAD F1 over ALL
the questions (the model's own abstentions included) when each question is decided by its
out-of-fold P(right). The thresholds are chosen on those out-of-fold estimates:
- answer_at maximises strict F1 (tentative answers count as abstentions), optionally among the
  thresholds whose HasAns F1 stays at or above --min-hasans-f1 (a floor on helpfulness);
- tentative_at is the lowest P at which the answers between it and answer_at are still right
  at least TENTATIVE_PRECISION of the time, so a "probably X" is worth showing.
`--write` stores the final fit (all rows) as rag_app/answering/gates/<preset>.json (plain JSON).
`--holdout R3 ...` scores that final gate on gate-off runs of other questions (ids seen in
training are dropped), exactly as answering applies it: the held-out check to report beside CV.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import print_section, write_results
from eval.runner import read_rows
from rag_app.answering.gate import GATES_DIR, GateModel

RIGHT_F1 = 0.5
TENTATIVE_PRECISION = 0.35
FOLDS = 5
C = 0.1  # inverse regularisation: CV AUROC 0.786 at 0.05-0.3 vs 0.783 at 1 (Qwen-0.5B, 460 answers)


def load(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Result rows of the runs, each question once: samples of different seeds overlap, and a
    question in two CV folds would leak its label."""
    unique: dict[str, dict[str, Any]] = {}
    for run_dir in run_dirs:
        for row in read_rows(run_dir):
            if not row.get("error"):
                unique.setdefault(str(row["id"]), row)
    rows = list(unique.values())
    if not rows:
        raise SystemExit(f"no result rows in {', '.join(map(str, run_dirs))}")
    return rows


def question_f1(row: dict[str, Any], answer: bool) -> float:
    """SQuAD F1 of one question if the gated span is given (answer) or withheld."""
    if not answer:
        return 0.0 if row["has_answer"] else 1.0
    return float(row["scores"]["span_f1"] or 0.0) if row["has_answer"] else 0.0


def overall_f1(rows: list[dict[str, Any]], p: dict[str, float], threshold: float) -> float:
    total = 0.0
    for row in rows:
        if row["id"] in p:
            total += question_f1(row, p[row["id"]] >= threshold)
        else:  # the model abstained itself, or its answer was not grounded: no gate involved
            total += float(row["scores"]["f1"])
    return 100 * total / len(rows)


def breakdown(rows: list[dict[str, Any]], p: dict[str, float], threshold: float) -> dict[str, Any]:
    """Strict HasAns F1, NoAns accuracy and answered precision when answering at `threshold`."""
    has: list[float] = []
    no: list[float] = []
    answered, right = 0, 0
    for row in rows:
        if row["id"] in p:
            answer = p[row["id"]] >= threshold
            f1 = question_f1(row, answer)
        else:
            answer = not row["abstained"]
            f1 = float(row["scores"]["f1"])
        (has if row["has_answer"] else no).append(f1)
        if answer:
            answered += 1
            right += f1 >= RIGHT_F1 if row["has_answer"] else 0
    return {
        "cv_HasAns_f1": 100 * sum(has) / max(1, len(has)),
        "cv_NoAns_accuracy": 100 * sum(no) / max(1, len(no)),
        "cv_answered": answered,
        "cv_answered_precision": 100 * right / max(1, answered),
    }


def fit(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    p = np.zeros(len(y))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y):
        p[test] = fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return p


def tentative_threshold(p: np.ndarray, y: np.ndarray, answer_at: float) -> float:
    """Lowest t whose band [t, answer_at) is right at least TENTATIVE_PRECISION of the time."""
    best = answer_at
    for t in sorted({round(v, 3) for v in p if v < answer_at}, reverse=True):
        band = (p >= t) & (p < answer_at)
        if band.sum() >= 5 and y[band].mean() >= TENTATIVE_PRECISION:
            best = t
    return float(best)


def holdout(gate: GateModel, run_dirs: list[Path], seen: set[str]) -> dict[str, Any]:
    """Strict/lenient scores of `gate` on gate-off runs, as answering would decide them."""
    if not run_dirs:
        return {}
    from sklearn.metrics import roc_auc_score

    rows = [r for r in load(run_dirs) if str(r["id"]) not in seen]
    if not rows:
        raise SystemExit("--holdout: every question was also in the training runs")
    gated = [r for r in rows if r.get("signals") and r.get("span")]
    p = {r["id"]: gate.p_correct({k: float(v) for k, v in r["signals"].items()}) for r in gated}
    y = [float(r["scores"]["span_f1"] or 0.0) >= RIGHT_F1 for r in gated]
    return {
        "questions": len(rows),
        "auroc": float(roc_auc_score(y, [p[r["id"]] for r in gated])) if len(set(y)) > 1 else None,
        "strict_f1": overall_f1(rows, p, gate.answer_at),
        "lenient_f1": overall_f1(rows, p, gate.tentative_at),
        "always_abstain_f1": 100 * sum(not r["has_answer"] for r in rows) / len(rows),
        **{k.removeprefix("cv_"): v for k, v in breakdown(rows, p, gate.answer_at).items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of `rag eval run`")
    parser.add_argument("--preset", required=True, help="model preset the runs used")
    parser.add_argument("--write", action="store_true", help="store the gate JSON in the package")
    parser.add_argument(
        "--min-hasans-f1",
        type=float,
        default=0.0,
        help="answer_at: best strict F1 among thresholds with CV HasAns F1 >= this",
    )
    parser.add_argument(
        "--holdout", nargs="+", type=Path, default=[], help="gate-off runs to score the gate on"
    )
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    rows = load(args.runs)
    gated = [r for r in rows if r.get("signals") and r.get("span")]
    features = sorted(gated[0]["signals"])
    x = np.array([[float(r["signals"][f]) for f in features] for r in gated])
    y = np.array([float(r["scores"]["span_f1"] or 0.0) >= RIGHT_F1 for r in gated], dtype=int)
    oof = out_of_fold(x, y)
    auroc = float(roc_auc_score(y, oof))
    p = {r["id"]: float(v) for r, v in zip(gated, oof, strict=True)}
    grid = [round(t, 3) for t in np.linspace(0.0, 1.0, 201)]
    helpful = [t for t in grid if breakdown(rows, p, t)["cv_HasAns_f1"] >= args.min_hasans_f1]
    best_f1, answer_at = max((overall_f1(rows, p, t), t) for t in helpful or grid)
    tentative_at = tentative_threshold(oof, y, answer_at)
    baseline_conf = roc_auc_score(y, x[:, features.index("logp_mean")])
    results = {
        "preset": args.preset,
        "questions": len(rows),
        "gated_answers": len(gated),
        "right_share": float(y.mean()),
        "cv_auroc": auroc,
        "cv_auroc_token_confidence_only": float(baseline_conf),
        "answer_at": answer_at,
        "tentative_at": tentative_at,
        "cv_strict_f1": best_f1,
        "always_answer_f1": overall_f1(rows, p, 0.0),
        "always_abstain_f1": 100 * sum(not r["has_answer"] for r in rows) / len(rows),
        "cv_lenient_f1": overall_f1(rows, p, tentative_at),
        **breakdown(rows, p, answer_at),
    }
    final = fit(x, y)
    scaler, logistic = final.named_steps["standardscaler"], final.named_steps["logisticregression"]
    weights = dict(zip(features, logistic.coef_[0].round(4).tolist(), strict=True))
    print_section(f"Answer gate for {args.preset} ({FOLDS}-fold CV)", [results])
    print_section("Weights (standardised signals)", [weights])
    gate = {
        "name": args.preset,
        "features": features,
        "mean": scaler.mean_.round(6).tolist(),
        "scale": scaler.scale_.round(6).tolist(),
        "coef": logistic.coef_[0].round(6).tolist(),
        "intercept": round(float(logistic.intercept_[0]), 6),
        "answer_at": answer_at,
        "tentative_at": tentative_at,
        "info": {k: v for k, v in results.items() if k != "preset"}
        | {"runs": [str(r) for r in args.runs], "min_hasans_f1": args.min_hasans_f1},
    }
    held = holdout(GateModel(**gate), args.holdout, {str(r["id"]) for r in rows})
    if held:
        print_section(f"Held out: the final gate on {held['questions']} other questions", [held])
        results["holdout"] = held
    write_results(f"gate_{args.preset}", results | {"weights": weights}, vars(args))
    if args.write:
        path = GATES_DIR / f"{args.preset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gate, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
