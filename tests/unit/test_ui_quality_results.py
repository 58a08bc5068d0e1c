"""Quality results at 1280 px: short labels with tooltips, and a one-run chart whose marks do not
hide each other (checked on the data and chart spec the page draws)."""

from __future__ import annotations

from typing import Any

from rag_app.ui.quality_results import (
    CHART_FIGURES,
    FIGURES,
    RESULT_COLUMNS,
    results_columns,
    results_table,
    trend_chart,
    trend_data,
)

# At 1280 px the main column is about 700 px wide: six metrics get ~115 px each, and a
# Streamlit header needs ~8 px a character plus ~20 px of padding and icon.
METRIC_PX, CHAR_PX, PAD_PX = 115, 8, 20


def run(started: str, **figures: float) -> dict[str, Any]:
    headline = {"right": 60.0, "lenient_right": 60.0, "abstained": 30.0, "f1": 60.0}
    return {"started": started, "questions": 3, "settings": {"top_k": 4}, "headline": {
        **headline, "source_hit": None, **figures}}  # fmt: skip


def test_metric_labels_fit_their_column_and_carry_the_full_meaning() -> None:
    for label, meaning in FIGURES.values():
        assert len(label) * CHAR_PX + PAD_PX <= METRIC_PX, label
        assert len(meaning) > len(label) + 10, f"{label}: the tooltip should explain it"


def test_result_headers_fit_their_widths_and_every_column_is_configured() -> None:
    for header, width, meaning in RESULT_COLUMNS.values():
        assert len(header) * CHAR_PX + PAD_PX <= width, header
        assert meaning
    rows = [{"question": "Who?", "verdict": "right", "answer": "Ada", "support": 0.9,
             "source_hit": True, "quote": "Ada built it."}]  # fmt: skip
    table = results_table(rows)
    assert list(table.columns) == list(RESULT_COLUMNS) == list(results_columns())
    assert table.iloc[0]["Source cited"] == "yes" and table.iloc[0]["Expected"] == ""
    assert list(results_table([]).columns) == list(RESULT_COLUMNS)


def test_one_run_draws_one_bar_per_figure_so_equal_values_stay_visible() -> None:
    runs = [run("20260101T100000000000Z")]  # right, lenient and f1 are all 60
    data = trend_data(runs)
    assert len(data) == 4  # source_hit is unknown: left out, not drawn as 0
    assert data["figure"].is_unique  # each figure its own x position
    spec = trend_chart(runs).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
             for layer in spec["layer"]]  # fmt: skip
    assert marks == ["bar", "text"]
    assert spec["layer"][0]["encoding"]["x"]["field"] == "figure"


def test_several_runs_draw_a_line_per_figure() -> None:
    runs = [run("20260101T100000000000Z"), run("20260102T100000000000Z", right=70.0)]
    data = trend_data(runs)
    assert data["run"].nunique() == 2 and set(data["figure"]) <= {
        FIGURES[k][0] for k in CHART_FIGURES
    }
    spec = trend_chart(runs).to_dict()
    assert spec["mark"]["type"] == "line" and spec["encoding"]["x"]["field"] == "run"
