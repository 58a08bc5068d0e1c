"""Fast commands load only what they use: `rag --help` and `rag kb list` import no torch,
langchain, sentence-transformers, FAISS, onnxruntime or Ray (checked on the real entry point with
`python -X importtime`, which lists every module a process imports; no timing is asserted), and
plain `rag ingest` never imports Ray (only `--ray` does)."""

from __future__ import annotations

import json
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
    "ray",
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


# `rag ingest` through the real CLI entry point with only the embedding model swapped for a fake
# (the real one needs its ONNX export); it ingests twice, the second time into the existing KB.
INGEST_TWICE = """
import json, sys
import ingest.embed
from rag_app import cli
from tests.fakes import HashingEmbeddings

ingest.embed.load_embedder = lambda settings: HashingEmbeddings()
for path in sys.argv[1:]:
    sys.argv = ["rag", "ingest", path, "--json"]
    try:
        cli.main()
    except SystemExit as exc:
        assert exc.code == 0, exc.code
print(json.dumps(sorted(sys.modules)))
"""


def test_ingest_into_an_existing_kb_skips_the_langchain_vectorstore(tmp_path: Path) -> None:
    """The FAISS KB writes through the plain FaissStore: the LangChain VectorStore adapter (and
    langchain_core.vectorstores, ~0.8 s to import) is for API and Python users only."""
    files = []
    for n in (1, 2):
        files.append(tmp_path / f"note{n}.txt")
        files[-1].write_text(f"Note {n}: the ferry to Tolwen leaves at 0{n}:15 on weekdays.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", INGEST_TWICE, *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert [json.loads(line)["added"] for line in lines[:2]] == [1, 1]
    modules = set(json.loads(lines[-1]))
    assert {"ingest.kb", "ingest.pipeline", "ingest.faiss_store"} <= modules  # it did ingest
    assert not {m for m in modules if m.startswith("langchain_core.vectorstores")}
    assert "ingest.faiss_langchain" not in modules
    assert not [m for m in modules if m.split(".")[0] == "ray" or m.startswith("ingest.ray_")]


# `rag ingest --ray` where the `ray` extra is not installed (an import of ray fails)
INGEST_WITHOUT_RAY = """
import sys
sys.modules["ray"] = None  # `import ray` now raises ImportError, as without the extra
from rag_app import cli
sys.argv = ["rag", "ingest", sys.argv[1], "--ray"]
cli.main()
"""


def test_ingest_on_ray_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("The ferry to Tolwen leaves at 06:15 on weekdays.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", INGEST_WITHOUT_RAY, str(note)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'error: Ray is not installed: pip install -e ".[ray]" (or run without --ray)'
    ]
    assert not (tmp_path / "data" / "kb").exists()  # said before any KB or model was touched


def test_importing_the_ingest_modules_skips_the_langchain_vectorstore() -> None:
    code = (
        "import sys, ingest.kb, ingest.pipeline, ingest.faiss_store, rag_app.commands.ingesting;"
        "print(sorted(m for m in sys.modules if m.startswith('langchain_core.vectorstores')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
