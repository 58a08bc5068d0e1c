"""UI quality page, results half: a run's headline figures, per-question table and the trend.

Labels are short so six figures and the table's headers fit side by side at 1280 px (the long
ones were cut to "Right incl. tent…" and "Suppor"); the full wording is each one's tooltip.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from eval.golden_run import past_run_rows, past_runs
from rag_app.settings import Settings

# key -> (short label, what it means); the page's figures in this order, all percentages
FIGURES: dict[str, tuple[str, str]] = {
    "right": (
        "Right",
        "Percent of questions answered right; declining is right when no answer is expected.",
    ),
    "lenient_right": (
        "Lenient",
        "Right, counting tentative answers ('probably X, not verified') as given (percent).",
    ),
    "tentative": ("Tentative", "Percent of answers given as 'probably X, not verified'."),
    "abstained": ("Abstained", "Percent of questions the app declined to answer."),
    "f1": ("F1", "Word overlap of the answers with the expected answers, 0 to 100."),
    "source_hit": (
        "Source",
        "Percent of answers citing the expected source file (questions that name one).",
    ),
}
CHART_FIGURES = ("right", "lenient_right", "abstained", "f1", "source_hit")
LOWER_IS_BETTER = ("abstained",)
# result table column -> (header, width in px, tooltip): the headers fit their widths at
# 1280 px, where the first five fit the ~700 px main column (source and quote scroll)
RESULT_COLUMNS: dict[str, tuple[str, int, str]] = {
    "Question": ("Question", 200, "The golden set's question."),
    "Verdict": ("Verdict", 125, "right, wrong, tentative or abstained."),
    "Answer": ("Answer", 165, "What the app answered."),
    "Expected": ("Expected", 95, "The answer you expect; empty = the documents do not say."),
    "Support": ("Support", 85, "How well the cited sentence supports the answer, 0 to 1."),
    "Source cited": ("Source", 80, "Whether the answer cited the expected source file."),
    "Quote": ("Quote", 360, "The sentence the answer rests on."),
}


def render_results(settings: Settings) -> None:
    """The chosen run's figures (with the change from the run before), its table, the trend."""
    runs = past_runs(settings, settings.kb)
    if not runs:
        st.caption("No evaluations yet.")
        return
    labels = [run_label(r) for r in runs]
    chosen = st.selectbox(
        "Run",
        list(range(len(runs)))[::-1],
        format_func=labels.__getitem__,
        key=f"quality-run-{len(runs)}",
    )
    run = runs[chosen if chosen is not None else -1]
    before = runs[chosen - 1]["headline"] if chosen else None
    _headline(run["headline"], before)
    st.dataframe(
        results_table(past_run_rows(settings, settings.kb, run)),
        hide_index=True,
        width="stretch",
        column_config=results_columns(),
    )
    st.markdown("**Across runs**")
    st.altair_chart(trend_chart(runs), width="stretch")


def run_label(run: dict[str, Any]) -> str:
    stamp = str(run.get("started", ""))
    when = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"
    top_k = run.get("settings", {}).get("top_k")
    return f"{when} · {run.get('questions', 0)} questions · top-k {top_k}"


def _headline(figures: dict[str, Any], before: dict[str, Any] | None) -> None:
    for col, (key, (label, meaning)) in zip(st.columns(len(FIGURES)), FIGURES.items(), strict=True):
        value = figures.get(key)
        old = (before or {}).get(key)
        change = value - old if value is not None and old is not None else None
        delta = None if change is None or abs(change) < 0.05 else f"{change:+.1f}"
        col.metric(
            label,
            "—" if value is None else f"{value:.1f}",
            delta,
            delta_color="inverse" if key in LOWER_IS_BETTER else "normal",
            help=meaning,
        )


def results_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per question: verdict, answer, support and the quote it rests on."""
    table = pd.DataFrame(
        [
            {
                "Question": r.get("question", ""),
                "Verdict": r.get("verdict", "error"),
                "Answer": r.get("answer", "") if not r.get("error") else f"error: {r['error']}",
                "Expected": r.get("expected", ""),
                "Support": r.get("support"),
                "Source cited": {True: "yes", False: "no"}.get(r.get("source_hit"), "—"),  # type: ignore[arg-type]
                "Quote": r.get("quote", ""),
            }
            for r in rows
        ],
        columns=list(RESULT_COLUMNS),
    )
    return table


def results_columns() -> dict[str, Any]:
    """Streamlit column settings: short headers, fixed widths, the full meaning as a tooltip."""
    config: dict[str, Any] = {}
    for name, (header, width, meaning) in RESULT_COLUMNS.items():
        if name == "Support":
            config[name] = st.column_config.NumberColumn(
                header, width=width, help=meaning, format="%.2f"
            )
        else:
            config[name] = st.column_config.TextColumn(header, width=width, help=meaning)
    return config


def trend_data(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run and figure: the run's time, the figure's short label, its value."""
    return pd.DataFrame(
        [
            {
                "run": run_label(r).split(" · ")[0],
                "figure": FIGURES[k][0],
                "value": r["headline"][k],
            }
            for r in runs
            for k in CHART_FIGURES
            if r["headline"].get(k) is not None
        ],
        columns=["run", "figure", "value"],
    )


def trend_chart(runs: list[dict[str, Any]]) -> alt.Chart | alt.LayerChart:
    """Each figure across the runs: lines with points; with one run, one labelled bar each.

    A single run has no trend, and its points all sat on one x position, where equal values
    (right and lenient are often the same) hid each other; bars side by side cannot overlap.
    """
    data = trend_data(runs)
    order = [FIGURES[k][0] for k in CHART_FIGURES]
    color = alt.Color("figure:N", title=None, sort=order)
    value = alt.Y("value:Q", title="%", scale=alt.Scale(domain=[0, 100]))
    tooltip: list[str | alt.Tooltip] = ["run", "figure", alt.Tooltip("value:Q", format=".1f")]
    if data["run"].nunique() <= 1:
        base = alt.Chart(data).encode(
            x=alt.X(
                "figure:N",
                title=data["run"].iloc[0] if len(data) else None,
                sort=order,
                axis=alt.Axis(labelAngle=0),
            ),
            y=value,
            tooltip=tooltip,
        )
        bars = base.mark_bar().encode(color=color.legend(None))  # the axis names each bar
        labels = base.mark_text(dy=-8).encode(text=alt.Text("value:Q", format=".1f"))
        return (bars + labels).properties(height=260)
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("run:N", title="Run", sort=None),
            y=value,
            color=color,
            tooltip=tooltip,
        )
        .properties(height=260)
    )
