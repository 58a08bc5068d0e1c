"""Unit tests for bench/common.py and the pure helpers the benchmarks rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.common import (
    latency_summary,
    library_versions,
    machine_info,
    markdown_table,
    percentile,
    write_results,
)
from bench.vectors import clustered_vectors, corpus_and_queries, recall_at_k


def test_percentile_matches_numpy_linear_interpolation() -> None:
    values = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2]
    for q in (0, 10, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = latency_summary([0.001] * 19 + [0.1])
    assert summary["p50_ms"] == pytest.approx(1.0)
    assert summary["p95_ms"] > 1.0
    assert summary["n"] == 20


def test_markdown_table_formats_rows_and_missing_cells() -> None:
    table = markdown_table([{"a": 1, "b": 0.12345}, {"a": "x|y"}], ["a", "b"])
    lines = table.splitlines()
    assert lines[0] == "| a | b |"
    assert lines[1] == "|---|---|"
    assert lines[2] == "| 1 | 0.123 |"
    assert lines[3] == "| x\\|y | – |"  # pipes escaped, missing cell shown as a dash
    assert markdown_table([]) == "(no rows)"


def test_write_results_records_machine_versions_and_date(tmp_path: Path) -> None:
    path = write_results("demo", {"rows": [1, 2]}, {"size": 3}, results_dir=tmp_path)
    data = json.loads(path.read_text())
    assert path == tmp_path / "demo.json"
    assert data["results"] == {"rows": [1, 2]}
    assert data["params"] == {"size": 3}
    assert data["machine"]["usable_cores"] >= 1
    assert data["libraries"]["numpy"] == np.__version__
    assert data["date"].startswith("20")
    assert not list(tmp_path.glob(".demo.*"))  # no temp file left behind


def test_machine_info_and_versions_skip_missing_packages() -> None:
    assert machine_info()["ram_gib"] > 0
    assert library_versions(["numpy", "no-such-package-xyz"]) == {"numpy": np.__version__}


def test_recall_at_k() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])
    assert recall_at_k(found, truth) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError):
        recall_at_k(found[:, :2], truth)


def test_clustered_vectors_are_normalised_clustered_and_reproducible() -> None:
    a = clustered_vectors(2000, seed=3)
    assert a.shape == (2000, 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, clustered_vectors(2000, seed=3))
    sims = a[:50] @ a.T
    nearest = np.sort(sims, axis=1)[:, -2]  # best neighbour other than itself
    assert nearest.mean() > 0.4  # clustered: unlike uniform random 384-d vectors (~0.2)
    base, queries = corpus_and_queries(1000, 10)
    assert base.shape == (1000, 384) and queries.shape == (10, 384)
