"""The Postgres store on a real server: bad input (one clear line, nothing written), namespaced
KBs, transactional replace, hybrid retrieval, and `rag db start|status|stop`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pydantic import SecretStr

from ingest.catalog import DocumentRow
from ingest.kb import DocumentWrite, open_kb
from ingest.pg_db import SCHEMA_VERSION, close_pools
from ingest.pg_server import LocalPostgres
from ingest.pipeline import ingest_texts
from rag_app.answering.retrieve import retrieve
from rag_app.errors import KnowledgeBaseError
from rag_app.records import Chunk
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, free_port
from tests.fakes import HashingEmbeddings

pytestmark = pytest.mark.integration

DOCS = {
    "bridge": "The Kestrel Bridge is a suspension bridge, 412 metres long, opened in 1931.",
    "orchard": "The Greywater orchard has 340 apple trees and 85 pear trees.",
}


def pg_settings(tmp_path: Path, url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", store="postgres", database_url=SecretStr(url))


def refused(tmp_path: Path, url: str, match: str) -> str:
    """open_kb(create=True) fails with one line matching `match`; no KB folder is written."""
    settings = pg_settings(tmp_path, url)
    with pytest.raises(KnowledgeBaseError, match=match) as caught:
        open_kb("notes", settings, create=True, embeddings=HashingEmbeddings())
    message = str(caught.value)
    assert "\n" not in message
    assert not settings.kb_dir("notes").exists()
    return message


def test_unreachable_url_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://rag:s3cret-pw@127.0.0.1:{free_port()}/rag"
    message = refused(tmp_path, url, "cannot connect to Postgres at postgresql://rag:\\*\\*\\*@")
    assert "s3cret-pw" not in message and "RAG_DATABASE_URL" in message


def test_wrong_password_is_one_line(tmp_path: Path, pg_url: str) -> None:
    user_part, _, rest = pg_url.partition("@")
    wrong = f"{user_part.rsplit(':', 1)[0]}:not-the-password@{rest}"
    message = refused(tmp_path, wrong, "password authentication failed")
    assert "not-the-password" not in message


def test_database_without_vector_extension_is_refused(tmp_path: Path, pg_url: str) -> None:
    """A plain user on a database where pgvector is not installed (and may not be created)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS plain_user")
        conn.execute("CREATE ROLE plain_user LOGIN PASSWORD 'plain-pw'")
        conn.execute("DROP EXTENSION IF EXISTS vector")
    host_db = pg_url.partition("@")[2]
    try:
        refused(tmp_path, f"postgresql://plain_user:plain-pw@{host_db}", "`vector` extension")
        with psycopg.connect(pg_url) as conn:  # nothing written: no rag schema, no extension
            assert conn.execute("SELECT to_regnamespace('rag')").fetchone() == (None,)
            assert (
                conn.execute("SELECT 1 FROM pg_extension WHERE extname='vector'").fetchone() is None
            )
    finally:
        close_pools()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY plain_user")
            conn.execute("DROP ROLE plain_user")


def test_newer_schema_version_is_refused(tmp_path: Path, pg_url: str) -> None:
    open_kb("first", pg_settings(tmp_path, pg_url), create=True, embeddings=HashingEmbeddings())
    close_pools()  # the next open checks the database again, as a new process would
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO rag.schema_version(version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    refused(tmp_path, pg_url, f"schema version {SCHEMA_VERSION + 1}.*upgrade rag_app")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT name FROM rag.kbs").fetchall() == [("first",)]


def test_bad_url_from_the_cli_is_one_error_line(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The ferry leaves every 20 minutes.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_DATA_DIR=str(tmp_path / "data"),
        RAG_STORE="postgres",
        RAG_DATABASE_URL=f"postgresql://rag:pw@127.0.0.1:{free_port()}/rag",
    )
    done = subprocess.run(
        [sys.executable, "-m", "rag_app.cli", "ingest", str(docs), "--kb", "notes"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to Postgres"), lines
    assert not (tmp_path / "data" / "kb" / "notes").exists()


def test_kbs_are_namespaced_and_removed_whole(tmp_path: Path, pg_url: str) -> None:
    from ingest.kb import remove_kb

    settings = pg_settings(tmp_path, pg_url)
    one = open_kb("one", settings, create=True, embeddings=HashingEmbeddings())
    two = open_kb("two", settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS.items(), one)
    ingest_texts([("ferry", "The Tolwen ferry crossing takes fourteen minutes.")], two)
    assert {c.source for c, _ in two.keyword_search("bridge orchard ferry", 5)} == {"ferry"}
    assert {c.source for c, _ in one.dense_search("ferry crossing", 5)} == {"bridge", "orchard"}
    assert remove_kb("one", settings)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT name FROM rag.kbs").fetchall() == [("two",)]
    assert two.count() == 1


def test_a_failed_replace_changes_nothing(tmp_path: Path, pg_url: str) -> None:
    """Old chunks out and new ones in commit together: a failing insert keeps the old text."""
    kb = open_kb("tx", pg_settings(tmp_path, pg_url), create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS.items(), kb)
    before = kb.catalog.revision()
    new = Chunk(chunk_id="b-new", text="Repainted orange.", source="bridge", doc_hash="h",
                start=0, end=17)  # fmt: skip
    row = DocumentRow("bridge", "h", kb.signature(), 1, "2025-01-01T00:00:00+00:00")
    bad_vectors = np.ones((1, 3), np.float32)  # the KB's vectors have 64 dimensions
    with pytest.raises(psycopg.Error, match="dimensions"):
        kb.write_documents([DocumentWrite(row, [new], bad_vectors)])
    assert kb.catalog.revision() == before
    assert kb.keyword_search("suspension", 1)[0][0].source == "bridge"
    assert kb.catalog.document("bridge") is not None and kb.count() == 2


def test_hybrid_retrieval_has_the_usual_shape(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url)
    kb = open_kb("hybrid", settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS.items(), kb)
    hits = retrieve("How long is the Kestrel suspension bridge?", kb, settings, k=2)
    assert hits[0].chunk.source == "bridge"
    assert hits[0].dense_rank is not None and hits[0].keyword_rank == 1
    assert hits[0].score > hits[-1].score


def test_hybrid_search_in_one_statement_equals_the_two_searches(
    tmp_path: Path, pg_url: str
) -> None:
    settings = pg_settings(tmp_path, pg_url)
    kb = open_kb("onetrip", settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts(DOCS.items(), kb)
    for question, source in [
        ("How long is the Kestrel suspension bridge?", None),
        ("How long is the Kestrel suspension bridge?", "bridge"),
        ("the of and", None),  # stopwords only: no keyword candidates, dense ones still
    ]:
        dense, keyword = kb.hybrid_search(question, 3, source)
        for one, two in [(dense, kb.dense_search(question, 3, source)),
                         (keyword, kb.keyword_search(question, 3, source))]:  # fmt: skip
            assert [c for c, _ in one] == [c for c, _ in two]
            # the union widens ts_rank's float4 to float8: equal to float4 precision
            assert [s for _, s in one] == pytest.approx([s for _, s in two], rel=1e-6)
        assert dense  # every question has dense candidates
        assert all(c.source == source for c, _ in dense + keyword) or source is None
    assert kb.hybrid_search("the of and", 3)[1] == []


def rag(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "rag_app.cli", "db", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_rag_db_start_status_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = LocalPostgres(data / "postgres")
    try:
        status = rag(data, "status")
        assert status.returncode == 1 and status.stdout.startswith("stopped:")
        started = rag(data, "start")
        assert started.returncode == 0, started.stderr
        url = server.url()
        assert url is not None and f"export RAG_DATABASE_URL='{url}'" in started.stdout
        assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
        with psycopg.connect(url) as conn:  # loopback, password, and pgvector available
            assert conn.execute("SELECT inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        again = rag(data, "start")
        assert again.returncode == 0 and again.stdout.startswith("already running:")
        assert server.url() == url
        running = rag(data, "status")
        password = server.password_file.read_text().strip()
        assert running.returncode == 0 and running.stdout.startswith("running: postgresql://")
        assert "***" in running.stdout and password not in running.stdout
        stopped = rag(data, "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not server.running()
        assert rag(data, "status").stdout.startswith("stopped:")
    finally:
        server.stop()
