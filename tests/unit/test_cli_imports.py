"""Fast commands load only what they use: `rag --help` and `rag kb list` import no torch,
langchain, sentence-transformers, FAISS or onnxruntime (checked on the real entry point with
`python -X importtime`, which lists every module a process imports; no timing is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ingest.manifest import Manifest, now_iso, write_manifest

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "langchain",
    "langchain_core",
    "langchain_openai",
    "faiss",
    "onnxruntime",
    "vllm",
)


def imported_modules(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set]:
    """Run `rag ARGS` in a fresh interpreter; (result, names of every module it imported)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rag_app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return result, names


def heavy_in(modules: set) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    result, modules = imported_modules(tmp_path, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kb" in result.stdout and "search" in result.stdout
    assert "typer" in modules  # the check sees imports at all
    assert heavy_in(modules) == []


def test_kb_list_reads_manifests_only(tmp_path: Path) -> None:
    kb_dir = tmp_path / "data" / "kb" / "notes"
    kb_dir.mkdir(parents=True)
    manifest = Manifest(
        store="faiss",
        embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        dimension=384,
        chunk_size=200,
        chunk_overlap=32,
        created_at=now_iso(),
    )
    write_manifest(kb_dir, manifest)
    result, modules = imported_modules(tmp_path, "kb", "list")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["notes"]
    assert "ingest.kb" in modules
    assert heavy_in(modules) == []
