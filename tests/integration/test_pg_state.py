"""Service state in a real Postgres (store = postgres), in-process: keys shared by every
replica, jobs claimed once (FOR UPDATE SKIP LOCKED) and taken over when the lease runs out,
KBs listed from the database whatever the data dir. (test_api_replicas.py does the same with
real `rag serve` processes.)"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ingest.kb import KnowledgeBase, list_kbs, open_kb, remove_kb
from rag_app.api.backends import open_keys
from rag_app.api.pg_jobs import PgJobQueue
from rag_app.api.pg_keys import PgKeyStore
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

pytestmark = pytest.mark.integration


def replica(tmp_path: Path, url: str, name: str) -> Settings:
    """A replica's settings: its own data dir, the shared database."""
    return Settings(
        data_dir=tmp_path / name, store="postgres", database_url=SecretStr(url), job_lease_s=30
    )


def test_keys_live_in_the_database_and_a_revocation_reaches_every_replica(
    tmp_path: Path, pg_url: str
) -> None:
    a, b = open_keys(replica(tmp_path, pg_url, "a")), open_keys(replica(tmp_path, pg_url, "b"))
    assert isinstance(a, PgKeyStore) and isinstance(b, PgKeyStore)
    assert not b.has_active()
    record, plain = a.create("ci", "editor", ["docs"])
    seen = b.check(plain)
    assert seen is not None and seen.active and seen.role == "editor" and seen.kbs == ("docs",)
    assert b.check(plain + "x") is None
    assert a.revoke(record.id)
    after = b.check(plain)
    assert after is not None and not after.active
    assert not b.has_active()
    with psycopg.connect(pg_url) as conn:  # the hash only, never the key
        stored = [r[0] for r in conn.execute("SELECT key_hash FROM rag.api_keys")]
    assert stored and plain not in stored[0] and len(stored[0]) == 64


def _kb(settings: Settings) -> KnowledgeBase:
    return open_kb("docs", settings, create=True, embeddings=HashingEmbeddings())


def test_a_job_is_claimed_once_and_taken_over_when_its_lease_runs_out(
    tmp_path: Path, pg_url: str
) -> None:
    sa, sb = replica(tmp_path, pg_url, "a"), replica(tmp_path, pg_url, "b")
    base_a = _kb(sa)
    a = PgJobQueue(sa, lambda _: base_a, start=False)
    files = [("one.txt", b"The lantern room has 214 steps."), ("two.txt", b"340 apple trees.")]
    job = a.submit_files(base_a, files, "k1")
    base_b = open_kb("docs", sb, embeddings=HashingEmbeddings())  # made through A
    b = PgJobQueue(sb, lambda _: base_b, start=False)
    assert b.get(job.id) is not None and b.get(job.id).status == "queued"  # type: ignore[union-attr]
    assert a._claim() == job.id
    assert b._claim() is None  # locked or leased: never a second claim
    held = b.get(job.id)
    assert held is not None and held.status == "running" and held.replica == a.replica
    with psycopg.connect(pg_url, autocommit=True) as conn:  # A died: its lease runs out
        conn.execute("UPDATE rag.jobs SET lease_until = now() - interval '1 second'")
    assert b._claim() == job.id
    b._run(job.id)
    done = a.get(job.id)
    assert done is not None and done.status == "done" and done.replica == b.replica
    assert done.attempts == 2 and done.files_done == 2
    assert [f.status for f in done.files] == ["added", "added"]
    assert not a._write(done)  # A lost the job: its writes are refused
    assert sorted(s.source for s in base_a.sources()) == [
        "upload://docs/one.txt",
        "upload://docs/two.txt",
    ]
    again = a.submit_reingest(base_a, "upload://docs/one.txt", "k1")  # bytes from the database
    assert a._claim() == again.id
    a._run(again.id)
    assert [f.status for f in a.get(again.id).files] == ["unchanged"]  # type: ignore[union-attr]


def test_a_stopping_replica_hands_its_job_back_and_a_job_that_kills_replicas_fails(
    tmp_path: Path, pg_url: str
) -> None:
    from rag_app.api.pg_jobs import MAX_ATTEMPTS

    sa, sb = replica(tmp_path, pg_url, "a"), replica(tmp_path, pg_url, "b")
    base = _kb(sa)
    a = PgJobQueue(sa, lambda _: base, start=False)
    b = PgJobQueue(sb, lambda _: base, start=False)
    job = a.submit_files(base, [("one.txt", b"The ferry takes fourteen minutes.")], "k1")
    assert a._claim() == job.id
    a.shutdown()  # graceful stop (SIGTERM) before the file: the job goes back to the queue
    a._run(job.id)
    back = b.get(job.id)
    assert back is not None and back.status == "queued" and back.replica == ""
    assert back.attempts == 0 and back.files_done == 0
    assert b._claim() == job.id
    b._run(job.id)
    assert b.get(job.id).status == "done"  # type: ignore[union-attr]

    poison = b.submit_files(base, [("two.txt", b"The orchard has pear trees.")], "k1")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # its replicas died MAX_ATTEMPTS times
        conn.execute(
            "UPDATE rag.jobs SET status = 'running', attempts = %s, "
            "lease_until = now() - interval '1 second' WHERE id = %s",
            (MAX_ATTEMPTS, poison.id),
        )
    assert b._claim() == poison.id
    b._run(poison.id)
    failed = b.get(poison.id)
    assert failed is not None and failed.status == "failed"
    assert f"stopped {MAX_ATTEMPTS} times" in failed.error


def test_the_kb_list_comes_from_the_database(tmp_path: Path, pg_url: str) -> None:
    sa, sb = replica(tmp_path, pg_url, "a"), replica(tmp_path, pg_url, "b")
    _kb(sa).close()
    assert "docs" in list_kbs(sb)
    assert open_kb("docs", sb, embeddings=HashingEmbeddings()).name == "docs"
    assert remove_kb("docs", sa)
    assert "docs" not in list_kbs(sb) and "docs" not in list_kbs(sa)
    embedded = Settings(data_dir=tmp_path / "a")  # the embedded default does not ask the database
    assert list_kbs(embedded) == []


def test_an_unreachable_database_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(tmp_path / "data"), "RAG_STORE": "postgres",
                "RAG_DATABASE_URL": f"postgresql://rag:s3cret@127.0.0.1:{port}/rag"})  # fmt: skip
    for args in (["keys", "list"], ["serve", "--port", str(port)]):
        result = subprocess.run([sys.executable, "-m", "rag_app.cli", *args], cwd=REPO_ROOT,
                                env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot connect to Postgres" in lines[0], result.stderr
        assert "s3cret" not in result.stderr
    assert not (tmp_path / "data").exists()
