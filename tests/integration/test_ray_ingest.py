"""`rag ingest --ray` on a local Ray (2 CPUs) with real documents and the real embedder: the same
KB and report as the single-process path, idempotent re-runs, and a run whose embedding worker
process dies mid-batch (os._exit) that still ends with every document exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr
from typer.testing import CliRunner

from ingest.embed import load_embedder
from ingest.kb import KnowledgeBase, open_kb, to_chunk
from ingest.pipeline import IngestSummary, ingest_texts, ingest_walk
from ingest.ray_ingest import ingest_texts_ray, ingest_walk_ray
from ingest.walk import walk_paths
from rag_app.cli import app
from rag_app.settings import Settings, get_settings
from tests.conftest import SAMPLES_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTES = {
    "ferry.md": "# Millbrook ferry\n\n## Timetable\n\n"
    + "The ferry leaves Pier 3 every 20 minutes from 6 am to 10 pm. " * 30
    + "\n\n## Fares\n\n"
    + "A single crossing costs 2.40 and a monthly pass 38. " * 25,
    "orchard.txt": "\n\n".join(
        f"Season {i}: the Greywater orchard picked {40 + i} tonnes of apples and pears "
        "after a dry spring and a wet August. " * 6
        for i in range(8)
    ),
    "quarry.html": "<html><head><title>Quarry</title></head><body><h1>Tolwen quarry</h1>"
    + "".join(
        f"<h2>Bench {i}</h2><p>"
        + f"Granite from bench {i} went into the viaduct piers and the harbour wall. " * 12
        + "</p>"
        for i in range(5)
    )
    + "</body></html>",
}
BAD = {"empty.txt": b"", "corrupt.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF"}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray (2 CPUs) for the module; ray_ingest uses a Ray already initialised as is."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One data dir for the module: the embedding model is exported to ONNX once."""
    return Settings(data_dir=tmp_path_factory.mktemp("ray") / "data")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """The five sample documents (txt, md, html, pdf, docx), three notes and two bad files."""
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES_DIR, folder)
    for name, text in NOTES.items():
        (folder / "notes").mkdir(exist_ok=True)
        (folder / "notes" / name).write_text(text)
    for name, data in BAD.items():
        (folder / name).write_bytes(data)
    return folder


def contents(kb: KnowledgeBase) -> dict[str, list[tuple[int, str]]]:
    """File name -> (position, text) of every chunk row the catalog holds for it, in order."""
    out = {}
    for doc in kb.sources():
        rows = kb.catalog.by_ids(kb.catalog.source_ids(doc.source)).values()
        chunks = sorted((to_chunk(r) for r in rows), key=lambda c: c.position)
        out[Path(doc.source).name] = [(c.position, c.text) for c in chunks]
        assert len(chunks) == doc.chunks  # the document row agrees with its chunk rows
    return out


def issues(summary: IngestSummary) -> set[tuple[str, str]]:
    return {(Path(f.source).name, f.reason) for f in summary.failed}


def test_ray_ingest_matches_the_single_process_path(
    local_ray: None, settings: Settings, docs: Path
) -> None:
    plain_kb = open_kb("plain", settings, create=True)
    plain = ingest_walk(walk_paths([docs]), plain_kb)
    kb = open_kb("onray", settings, create=True)
    first = ingest_walk_ray(walk_paths([docs]), kb, workers=2)

    assert first.added == plain.added == len(NOTES) + 5
    assert first.chunks_written == plain.chunks_written == kb.count() == plain_kb.count()
    assert issues(first) == issues(plain) and {n for n, _ in issues(first)} == set(BAD)
    assert contents(kb) == contents(plain_kb)
    assert sum(d.chunks for d in kb.sources()) == kb.count()

    again = ingest_walk_ray(walk_paths([docs]), kb, workers=2)  # nothing new: nothing written
    assert (again.unchanged, again.added, again.changed, again.chunks_written) == (8, 0, 0, 0)
    assert issues(again) == issues(first)

    (docs / "notes" / "ferry.md").write_text(NOTES["ferry.md"].replace("Pier 3", "Pier 7"))
    shutil.copy(docs / "notes" / "orchard.txt", docs / "orchard copy.txt")
    third = ingest_walk_ray(walk_paths([docs]), kb, workers=1)
    assert (third.changed, third.unchanged, third.added) == (1, 7, 0)
    assert [Path(d.same_as).name for d in third.duplicates] == ["orchard.txt"]
    assert any("Pier 7" in t for _, t in contents(kb)["ferry.md"])
    assert len(kb.sources()) == 8 and sum(d.chunks for d in kb.sources()) == kb.count()


def test_ray_ingest_of_text_records(local_ray: None, settings: Settings) -> None:
    records = [
        (f"rec-{i}", f"Record {i} says the tide turns at {i}:15. " * (5 + 20 * i)) for i in range(4)
    ]
    plain_kb, kb = (
        open_kb("texts-plain", settings, create=True),
        open_kb("texts", settings, create=True),
    )
    plain = ingest_texts(records, plain_kb)
    summary = ingest_texts_ray(records + [("empty", " ")], kb, workers=1)
    assert summary.added == plain.added == 4 and summary.chunks_written == plain.chunks_written
    assert [f.source for f in summary.failed] == ["empty"]
    assert contents(kb) == contents(plain_kb)
    assert ingest_texts_ray(records, kb, workers=2).unchanged == 4


def test_ray_ingest_writes_a_postgres_kb(
    local_ray: None, settings: Settings, docs: Path, pg_url: str
) -> None:
    """The cluster shape: Ray's workers parse and embed, the driver writes a Postgres KB."""
    on_pg = settings.model_copy(update={"store": "postgres", "database_url": SecretStr(pg_url)})
    kb = open_kb("onray-pg", on_pg, create=True)
    first = ingest_walk_ray(walk_paths([docs]), kb, workers=2)
    plain_kb = open_kb("plain-local", settings, create=True)
    plain = ingest_walk(walk_paths([docs]), plain_kb)
    assert first.added == plain.added and first.chunks_written == plain.chunks_written
    assert kb.stats()["store"] == "postgres" and kb.count() == plain_kb.count()
    assert contents(kb) == contents(plain_kb)
    hits = kb.dense_search("How often does the Millbrook ferry leave?", 1)
    assert Path(hits[0][0].source).name == "ferry.md"
    assert ingest_walk_ray(walk_paths([docs]), kb, workers=1).unchanged == first.added


def test_cli_ingest_ray_json(
    local_ray: None, settings: Settings, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()

    def ingest(*args: str) -> tuple[int, dict]:
        get_settings.cache_clear()
        result = runner.invoke(app, ["ingest", *args, "--json"], catch_exceptions=False)
        return result.exit_code, json.loads(result.stdout)

    try:
        code, on_ray = ingest(str(docs), "--kb", "cli", "--ray")
        plain_code, plain = ingest(str(docs), "--kb", "cli-plain")
        assert code == plain_code == 0 and on_ray.keys() == plain.keys()
        counted = ("added", "unchanged", "chunks_written")
        assert [on_ray[k] for k in counted] == [plain[k] for k in counted]
        assert sorted(map(str, on_ray["failed"])) == sorted(map(str, plain["failed"]))
        (docs / "bad").mkdir()
        shutil.move(docs / "corrupt.pdf", docs / "bad" / "corrupt.pdf")
        code, report = ingest(str(docs / "bad"), "--kb", "cli-bad", "--ray")
        assert code == 1 and [Path(f["source"]).name for f in report["failed"]] == ["corrupt.pdf"]
        assert not (settings.kb_dir("cli-bad") / "manifest.json").exists()  # no empty KB is left
    finally:
        get_settings.cache_clear()


def test_cli_on_a_pipe_prints_the_report_only(settings: Settings, docs: Path) -> None:
    """The real entry point, its own local Ray: stdout is the JSON report, stderr stays empty
    (Ray's notes go to the ingest log), and a re-run finds everything unchanged."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "RAY_"))}
    env.update(RAG_DATA_DIR=str(settings.data_dir), HF_HUB_OFFLINE="1")
    rag = [str(Path(sys.executable).parent / "rag"), "ingest", str(docs / "notes"), "--ray"]
    for expected in ({"added": 3}, {"unchanged": 3}):
        done = subprocess.run(
            [*rag, "--kb", "piped", "--json"], capture_output=True, text=True, env=env, timeout=600
        )
        assert (done.returncode, done.stderr) == (0, ""), done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert {k: report[k] for k in expected} == expected and report["failed"] == []


class _DiesOnFirstEmbed(Embeddings):
    """The real embedder; the first call in any process ends that process (os._exit): the marker
    file is created atomically (O_EXCL), so exactly one call in the whole run crashes."""

    def __init__(self, inner: Embeddings, marker: Path) -> None:
        self.inner, self.marker = inner, marker

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.embed_documents(texts)
        os.write(fd, json.dumps({"pid": os.getpid(), "texts": len(texts)}).encode())
        os.close(fd)
        os._exit(1)  # the worker process dies for real, mid-batch: no cleanup, no exception

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@dataclass(frozen=True)
class CrashOnce:
    """Embedder factory for the Ray actors (pickled to them, hence plain data)."""

    settings: Settings
    marker: Path

    def __call__(self) -> Embeddings:
        return _DiesOnFirstEmbed(load_embedder(self.settings), self.marker)


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie awaiting its parent has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_killed_embedding_worker_still_ingests_every_document_once(
    local_ray: None, settings: Settings, docs: Path, tmp_path: Path
) -> None:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    expected_kb = open_kb("expected", settings, create=True)
    ingest_walk(walk_paths([docs]), expected_kb)
    kb = open_kb("crash", settings, create=True)
    marker = tmp_path / "crashed.json"

    summary = ingest_walk_ray(
        walk_paths([docs]), kb, workers=2, embedder=CrashOnce(settings, marker)
    )

    crash = json.loads(marker.read_text())  # the crash happened, in a worker, inside a batch
    assert crash["pid"] != os.getpid() and crash["texts"] > 0
    assert not running(crash["pid"])  # that process is gone: Ray started another actor
    assert summary.added == len(NOTES) + 5 and {n for n, _ in issues(summary)} == set(BAD)
    sources = [d.source for d in kb.sources()]
    assert len(sources) == len(set(sources)) == summary.added
    assert contents(kb) == contents(expected_kb)  # every document once, every chunk once
    assert kb.count() == expected_kb.count() == summary.chunks_written
    assert kb.count() == sum(d.chunks for d in kb.sources())
    assert vector_ids(kb) == set(kb.catalog.all_ids().tolist())  # one vector per chunk row


def vector_ids(kb: KnowledgeBase) -> set[int]:
    import faiss

    from ingest.faiss_store import FaissStore

    assert isinstance(kb.index, FaissStore) and kb.index.index is not None
    ids = faiss.vector_to_array(kb.index.index.id_map).tolist()
    assert len(ids) == len(set(ids))
    return set(ids)
