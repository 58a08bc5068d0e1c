"""Fit the answer gate of one model preset from `rag eval run` results (gate off), with CV.

    RAG_ANSWER_GATE=off RAG_LLM_PRESET=P rag eval run --dataset SQUAD --limit 500 --seed 0 --out R
    python -m bench.fit_gate squad=R [hotpot=R2 ...] --preset P [--write]

Each row whose answer was a grounded span carries the gate's signals and `span_f1` (the span's
SQuAD F1 against the gold); label = span_f1 >= 0.5. A run may be named by its domain (NAME=R):
rows of one domain are one group for leave-one-domain-out (LODO) checks. A standardised logistic
regression (scikit-learn) is scored by 5-fold stratified cross-validation, and its out-of-fold
logits are recalibrated by Platt scaling (the regularised fit is under-confident at the top); the
calibration is folded into the shipped coefficients, so the gate file keeps its plain form.
The thresholds give the kinds their meanings, not the best SQuAD F1:
- answer_at is the lowest P whose confident answers (P >= it) are right at least --precision of
  the time (out of fold): "confident" means right;
- tentative_at is the P at or above which answering (confident or tentative) gives the best
  out-of-fold F1, i.e. lenient F1: below it an answer is more likely to be wrong (or to answer an
  unanswerable question) than withholding it, so "Probably X" keeps its plain meaning.
LODO: for each domain, the gate is fitted on the others and scored on it (AUROC, ECE, precision
of confident answers, coverage = answerable questions answered confidently and right).
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
CONFIDENT_PRECISION = 0.92  # out of fold; a margin over the 0.9 that "confident" promises
MIN_CONFIDENT = 20  # a precision over fewer answers than this says little
FOLDS = 5
C = 0.1  # inverse regularisation: CV AUROC 0.786 at 0.05-0.3 vs 0.783 at 1 (Qwen-0.5B, 460 answers)


def parse_run(spec: str) -> tuple[str, Path]:
    """NAME=PATH or PATH (domain "squad")."""
    name, sep, path = spec.partition("=")
    return (name, Path(path)) if sep else ("squad", Path(spec))


def load(run_dirs: list[Path], domains: list[str] | None = None) -> list[dict[str, Any]]:
    """Result rows of the runs, each question once: samples of different seeds overlap, and a
    question in two CV folds would leak its label. Each row gets its run's `domain`."""
    unique: dict[str, dict[str, Any]] = {}
    for i, run_dir in enumerate(run_dirs):
        for row in read_rows(run_dir):
            if not row.get("error"):
                unique.setdefault(str(row["id"]), row | {"domain": (domains or [])[i : i + 1]})
    rows = [r | {"domain": (r["domain"] or ["squad"])[0]} for r in unique.values()]
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


def tentative_threshold(rows: list[dict[str, Any]], p: dict[str, float], answer_at: float) -> float:
    """The t <= answer_at with the best out-of-fold F1 when every answer with P >= t is given
    (the highest such t on ties: fewer answers for the same F1).

    A band chosen for a fixed share right (35% before) labelled answers "probably" that were
    mostly wrong, and lowered lenient F1 below strict F1 (SQuAD seed 5: 58.4 vs 62.0)."""
    candidates = sorted({round(v, 3) for v in p.values() if v < answer_at} | {answer_at})
    best_t, best_f1 = answer_at, overall_f1(rows, p, answer_at)
    for t in reversed(candidates):
        f1 = overall_f1(rows, p, t)
        if f1 > best_f1 + 1e-9:
            best_t, best_f1 = t, f1
    return float(best_t)


def confident_threshold(p: np.ndarray, y: np.ndarray, precision: float) -> float:
    """Lowest t whose confident set (p >= t, at least MIN_CONFIDENT answers) is right at least
    `precision` of the time (1.0: nothing is confident when no threshold holds).

    The promise is about the confident answers as a whole, so the precision is cumulative from
    the top; a lone wrong answer among the first few does not veto every lower threshold (it
    did with a per-threshold rule, which left nothing confident on 400-question runs)."""
    order = np.argsort(-p)
    ps, ys = p[order], y[order]
    right = np.cumsum(ys)
    best = 1.0
    for i in range(MIN_CONFIDENT - 1, len(ps)):
        if i + 1 < len(ps) and ps[i + 1] == ps[i]:
            continue  # a threshold takes every answer at the same P
        if right[i] / (i + 1) >= precision:
            best = float(ps[i])
    return round(best, 3)


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def platt(oof: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of P = sigmoid(a * z + b) over the out-of-fold logits z (Platt scaling)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit(oof).reshape(-1, 1), y)
    return float(lr.coef_[0][0]), float(lr.intercept_[0])


def calibrated(p: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    return 1 / (1 + np.exp(-(ab[0] * logit(p) + ab[1])))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    from eval.gate_metrics import ece as pair_ece

    return float(pair_ece(list(zip(p.tolist(), y.astype(bool).tolist(), strict=True)), bins) or 0.0)


def kind_scores(
    rows: list[dict[str, Any]], p: dict[str, float], answer_at: float
) -> dict[str, Any]:
    """Precision of confident answers and coverage (answerable questions answered confidently
    and right) when answering at `answer_at`; the model's own abstentions count as withheld."""
    confident = [r for r in rows if r["id"] in p and p[r["id"]] >= answer_at]
    right = [r for r in confident if question_f1(r, True) >= RIGHT_F1]
    answerable = sum(bool(r["has_answer"]) for r in rows)
    return {
        "confident": len(confident),
        "confident_precision": len(right) / len(confident) if confident else None,
        "coverage": len(right) / answerable if answerable else None,
    }


def lodo(
    rows: list[dict[str, Any]], x: np.ndarray, y: np.ndarray, gated: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Leave one domain out: fit (and calibrate, and threshold) on the others, score on it."""
    from sklearn.metrics import roc_auc_score

    domains = np.array([r["domain"] for r in gated])
    out = []
    for name in sorted(set(domains)):
        test, train = domains == name, domains != name
        if train.sum() < 50 or len(set(y[train])) < 2 or len(set(y[test])) < 2:
            continue
        oof = out_of_fold(x[train], y[train])
        ab = platt(oof, y[train])
        answer_at = confident_threshold(calibrated(oof, ab), y[train], CONFIDENT_PRECISION)
        p_test = calibrated(fit(x[train], y[train]).predict_proba(x[test])[:, 1], ab)
        p = {r["id"]: float(v) for r, v in zip(np.array(gated)[test], p_test, strict=True)}
        out.append(
            {
                "held_out": name,
                "answers": int(test.sum()),
                "auroc": float(roc_auc_score(y[test], p_test)),
                "ece": ece(p_test, y[test]),
                "answer_at": answer_at,
                **kind_scores([r for r in rows if r["domain"] == name], p, answer_at),
            }
        )
    return out


def by_domain(
    rows: list[dict[str, Any]], gated: list[dict[str, Any]], oof: np.ndarray, answer_at: float
) -> list[dict[str, Any]]:
    """Per domain, the pooled gate's out-of-fold scores at the pooled thresholds: "confident"
    must mean right in each domain, not only on average."""
    from sklearn.metrics import roc_auc_score

    out = []
    for name in sorted({r["domain"] for r in rows}):
        mine = [i for i, r in enumerate(gated) if r["domain"] == name]
        y = np.array([float(gated[i]["scores"]["span_f1"] or 0.0) >= RIGHT_F1 for i in mine])
        p_dom = oof[mine]
        p = {gated[i]["id"]: float(oof[i]) for i in mine}
        domain_rows = [r for r in rows if r["domain"] == name]
        out.append(
            {
                "domain": name,
                "questions": len(domain_rows),
                "answers": len(mine),
                "auroc": float(roc_auc_score(y, p_dom)) if len(set(y)) > 1 else None,
                "ece": ece(p_dom, y.astype(int)),
                **kind_scores(domain_rows, p, answer_at),
                "cv_strict_f1": overall_f1(domain_rows, p, answer_at),
            }
        )
    return out


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
        "ece": ece(np.array([p[r["id"]] for r in gated]), np.array(y, dtype=int)),
        **kind_scores(rows, p, gate.answer_at),
        **{k.removeprefix("cv_"): v for k, v in breakdown(rows, p, gate.answer_at).items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders of `rag eval run`, as [DOMAIN=]PATH")
    parser.add_argument("--preset", required=True, help="model preset the runs used")
    parser.add_argument("--write", action="store_true", help="store the gate JSON in the package")
    parser.add_argument(
        "--precision",
        type=float,
        default=CONFIDENT_PRECISION,
        help="out-of-fold share of confident answers that must be right",
    )
    parser.add_argument(
        "--drop", nargs="*", default=[], help="signals to leave out (e.g. type_agreement)"
    )
    parser.add_argument(
        "--holdout", nargs="+", type=Path, default=[], help="gate-off runs to score the gate on"
    )
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    named = [parse_run(spec) for spec in args.runs]
    rows = load([path for _, path in named], [name for name, _ in named])
    gated = [r for r in rows if r.get("signals") and r.get("span")]
    features = sorted({f for r in gated for f in r["signals"]} - set(args.drop))
    # A signal a row lacks (e.g. check_yes from a server without log-probabilities) takes the
    # mean of the rows that have it, as GateModel.p_correct does at answer time.
    means = {f: np.mean([r["signals"][f] for r in gated if f in r["signals"]]) for f in features}
    x = np.array([[float(r["signals"].get(f, means[f])) for f in features] for r in gated])
    y = np.array([float(r["scores"]["span_f1"] or 0.0) >= RIGHT_F1 for r in gated], dtype=int)
    raw_oof = out_of_fold(x, y)
    ab = platt(raw_oof, y)
    oof = calibrated(raw_oof, ab)
    p = {r["id"]: float(v) for r, v in zip(gated, oof, strict=True)}
    answer_at = confident_threshold(oof, y, args.precision)
    tentative_at = tentative_threshold(rows, p, answer_at)
    baseline_conf = roc_auc_score(y, x[:, features.index("logp_mean")])
    results = {
        "preset": args.preset,
        "questions": len(rows),
        "domains": sorted({r["domain"] for r in rows}),
        "gated_answers": len(gated),
        "right_share": float(y.mean()),
        "cv_auroc": float(roc_auc_score(y, oof)),
        "cv_ece": ece(oof, y),
        "cv_ece_before_platt": ece(raw_oof, y),
        "cv_auroc_token_confidence_only": float(baseline_conf),
        "platt": list(ab),
        "answer_at": answer_at,
        "tentative_at": tentative_at,
        "cv_strict_f1": overall_f1(rows, p, answer_at),
        "cv_lenient_f1": overall_f1(rows, p, tentative_at),
        "always_answer_f1": overall_f1(rows, p, 0.0),
        "always_abstain_f1": 100 * sum(not r["has_answer"] for r in rows) / len(rows),
        **{f"cv_{k}": v for k, v in kind_scores(rows, p, answer_at).items()},
        **breakdown(rows, p, answer_at),
    }
    per_domain = lodo(rows, x, y, gated)
    domain_cv = by_domain(rows, gated, oof, answer_at)
    final = fit(x, y)
    scaler, logistic = final.named_steps["standardscaler"], final.named_steps["logisticregression"]
    # Platt folded in: sigmoid(a * (w.x + c) + b) = sigmoid((a w).x + (a c + b))
    coef = ab[0] * logistic.coef_[0]
    intercept = ab[0] * float(logistic.intercept_[0]) + ab[1]
    weights = dict(zip(features, coef.round(4).tolist(), strict=True))
    print_section(f"Answer gate for {args.preset} ({FOLDS}-fold CV)", [results])
    print_section("Per domain, out of fold, at the pooled thresholds", domain_cv)
    results["by_domain"] = domain_cv
    if per_domain:
        print_section("Leave one domain out", per_domain)
        results["lodo"] = per_domain
    print_section("Weights (standardised signals, calibrated)", [weights])
    gate = {
        "name": args.preset,
        "features": features,
        "mean": scaler.mean_.round(6).tolist(),
        "scale": scaler.scale_.round(6).tolist(),
        "coef": coef.round(6).tolist(),
        "intercept": round(intercept, 6),
        "answer_at": answer_at,
        "tentative_at": tentative_at,
        "info": {k: v for k, v in results.items() if k != "preset"}
        | {"runs": args.runs, "precision": args.precision, "dropped": args.drop},
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
