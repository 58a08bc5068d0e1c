"""Two real `rag serve` replicas (separate data dirs) on one real Postgres (store = postgres):
an upload through one is answered through the other with citations; a key revoked through one
is refused by the other; kill -9 of the replica that holds an ingest job → the other completes
it, every document once; a CLI ingest and an API upload into one KB at once lose nothing.

"At once" and "holds the job" are made certain, not timed: the test holds the KB's row lock in
`rag.kbs` (every write transaction takes it first), so writers wait inside their transaction
until the test lets go, and the test reads who waits from Postgres itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from rag_app.api.pg_keys import PgKeyStore
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, SAMPLES_DIR, WAIT_S, until
from tests.integration.test_api_serve import EXPECTED, QUESTION, assert_cited, start_serve

pytestmark = pytest.mark.integration
LEASE_S = "10"


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[str]
    data_dir: Path
    id: str  # as reported by /healthz and recorded on the jobs it claims


@dataclass
class Cluster:
    db: str
    a: Replica
    b: Replica
    key: str  # an editor key for every KB
    env: dict[str, str]  # RAG_* of a replica, less its data dir

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def alive(self) -> list[Replica]:
        return [r for r in (self.a, self.b) if r.proc.poll() is None]


def pg_env(db: str) -> dict[str, str]:
    return {"RAG_STORE": "postgres", "RAG_DATABASE_URL": db, "RAG_JOB_LEASE_S": LEASE_S}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pg_module_url: str, vllm_server: str
) -> Iterator[Cluster]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("keys"), store="postgres",
        database_url=SecretStr(pg_module_url),
    )  # fmt: skip
    _, key = PgKeyStore.open(settings).create("replicas", "editor", ["*"])
    env = pg_env(pg_module_url)
    dirs = [tmp_path_factory.mktemp(n) for n in ("replica-a", "replica-b")]
    with ThreadPoolExecutor(2) as pool:  # both load their models at the same time
        started = list(pool.map(lambda d: start_serve(d, vllm_server, **env), dirs))
    replicas = [
        Replica(url, proc, d, httpx.get(f"{url}/healthz", timeout=30).json()["replica"])
        for (proc, url), d in zip(started, dirs, strict=True)
    ]
    yield Cluster(pg_module_url, replicas[0], replicas[1], key, env)
    for r in replicas:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
            r.proc.wait(timeout=60)


def create_kb(c: Cluster, r: Replica, name: str) -> None:
    made = httpx.post(f"{r.url}/v1/kbs", json={"name": name}, headers=c.headers(), timeout=120)
    assert made.status_code == 201, made.text


def upload(c: Cluster, r: Replica, kb: str, files: dict[str, bytes]) -> str:
    sent = [("files", (name, data)) for name, data in files.items()]
    reply = httpx.post(f"{r.url}/v1/kbs/{kb}/documents", files=sent, headers=c.headers(),
                       timeout=120)  # fmt: skip
    assert reply.status_code == 202, reply.text
    return str(reply.json()["job"]["id"])


def job(c: Cluster, r: Replica, job_id: str) -> dict[str, Any]:
    reply = httpx.get(f"{r.url}/v1/jobs/{job_id}", headers=c.headers(), timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def finished(c: Cluster, r: Replica, job_id: str) -> dict[str, Any]:
    found = until(lambda: (j := job(c, r, job_id))["status"] in ("done", "failed") and j,
                  f"job {job_id}")  # fmt: skip
    assert found["status"] == "done", found
    return found  # type: ignore[no-any-return]


def documents(c: Cluster, r: Replica, kb: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{r.url}/v1/kbs/{kb}/documents", headers=c.headers(), timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]  # type: ignore[no-any-return]


@contextmanager
def kb_row_locked(db: str, kb: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold KB `kb`'s row in rag.kbs: every writer of it waits inside its transaction."""
    with psycopg.connect(db) as conn:
        locked = conn.execute("SELECT 1 FROM rag.kbs WHERE name = %s FOR UPDATE", (kb,))
        assert locked.fetchone() is not None
        yield conn
        conn.rollback()


def waiting_writers(db: str) -> int:
    """Sessions waiting for a row lock on rag.kbs (a writer blocked by kb_row_locked)."""
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE rag.kbs SET revision%%'"
        ).fetchone()
    return int(row[0]) if row else 0


def texts(prefix: str, n: int) -> dict[str, bytes]:
    return {f"{prefix}-{i}.txt": f"Note {i} of {prefix}: the {prefix} ledger lists item "
            f"number {1000 + i} in row {i}.".encode() for i in range(n)}  # fmt: skip


def test_upload_through_one_replica_is_answered_through_the_other(cluster: Cluster) -> None:
    c = cluster
    assert c.a.id != c.b.id
    create_kb(c, c.a, "team")
    listed = httpx.get(f"{c.b.url}/v1/kbs", headers=c.headers(), timeout=60).json()["data"]
    assert {"name": "team"} in listed  # B has its own data dir: the list is the database's
    lighthouse = SAMPLES_DIR / "harrow_point_lighthouse.md"
    job_id = upload(c, c.a, "team", {lighthouse.name: lighthouse.read_bytes()})
    done = finished(c, c.b, job_id)  # the job is visible through either replica
    assert [f["status"] for f in done["files"]] == ["added"]
    body = {"model": "rag:team", "messages": [{"role": "user", "content": QUESTION}]}
    reply = httpx.post(f"{c.b.url}/v1/chat/completions", json=body, headers=c.headers(),
                       timeout=900)  # fmt: skip
    assert reply.status_code == 200, reply.text
    message = reply.json()["choices"][0]["message"]
    assert_cited(message["rag"])
    assert EXPECTED in message["content"]
    assert all(c_["source"] == f"upload://team/{lighthouse.name}"
               for c_ in message["rag"]["citations"])  # fmt: skip


def test_a_key_revoked_through_one_replica_is_refused_by_the_other(cluster: Cluster) -> None:
    c = cluster
    _, plain = PgKeyStore.open(Settings(store="postgres", database_url=SecretStr(c.db))).create(
        "short-lived", "reader", ["team"]
    )
    assert httpx.get(f"{c.b.url}/v1/kbs", headers=c.headers(plain), timeout=60).status_code == 200
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({**c.env, "RAG_DATA_DIR": str(c.a.data_dir)})  # `rag keys` as on replica A's host
    key_id = plain.split(".", 1)[0].removeprefix("rag-")
    command = [sys.executable, "-m", "rag_app.cli", "keys", "revoke", key_id]
    revoked = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert revoked.returncode == 0, revoked.stderr
    for r in (c.b, c.a):  # no restart, no cache to expire: the next request is refused
        refused = httpx.get(f"{r.url}/v1/kbs", headers=c.headers(plain), timeout=60)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "revoked_api_key"


def test_a_cli_ingest_and_an_api_upload_into_one_kb_at_once_lose_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    c = cluster
    create_kb(c, c.b, "mixed")
    folder = tmp_path / "cli-docs"
    folder.mkdir()
    on_disk = texts("disk", 6)
    for name, data in on_disk.items():
        (folder / name).write_bytes(data)
    uploaded = texts("upload", 4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({**c.env, "RAG_DATA_DIR": str(tmp_path / "cli-data"), "HF_HUB_OFFLINE": "1"})
    with kb_row_locked(c.db, "mixed"):
        command = [sys.executable, "-m", "rag_app.cli", "ingest", str(folder), "--kb", "mixed"]
        cli = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        job_id = upload(c, c.a, "mixed", uploaded)
        # both writers are inside their write transactions, waiting on the same KB
        until(lambda: waiting_writers(c.db) == 2 or cli.poll() is not None, "both writers")
        assert cli.poll() is None, cli.communicate()
    _, err = cli.communicate(timeout=WAIT_S)
    assert cli.returncode == 0, err
    assert finished(c, c.a, job_id)["files_done"] == len(uploaded)
    names = sorted(d["name"] for d in documents(c, c.b, "mixed"))
    assert names == sorted([*on_disk, *uploaded])
    stats = httpx.get(f"{c.b.url}/v1/kbs/mixed", headers=c.headers(), timeout=60).json()
    assert stats["documents"] == len(names)
    assert stats["chunks"] == sum(d["chunks"] for d in documents(c, c.a, "mixed"))


def test_kill_9_of_the_replica_holding_a_job_leaves_it_to_the_other(cluster: Cluster) -> None:
    c = cluster
    create_kb(c, c.a, "crash")
    files = texts("crash", 5)
    with kb_row_locked(c.db, "crash"):
        job_id = upload(c, c.a, "crash", files)
        # the holder is inside its first file's write transaction: it cannot finish the job
        until(lambda: waiting_writers(c.db) == 1, "the job's first write")
        held = job(c, c.b, job_id)
        assert held["status"] == "running" and held["files_done"] == 0 and held["attempts"] == 1
        holder = next(r for r in (c.a, c.b) if r.id == held["replica"])
        other = c.b if holder is c.a else c.a
        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait(timeout=60)
    done = finished(c, other, job_id)  # after the lease runs out, the other claims it
    assert done["replica"] == other.id and done["attempts"] == 2
    assert done["files_done"] == len(files)
    assert all(f["status"] == "added" for f in done["files"]), done["files"]
    docs = documents(c, other, "crash")
    assert sorted(d["name"] for d in docs) == sorted(files)  # every document, once
    with psycopg.connect(c.db) as conn:  # and no chunk of the killed writer survived
        schema = conn.execute("SELECT id FROM rag.kbs WHERE name = 'crash'").fetchone()
        assert schema is not None
        rows = conn.execute(f"SELECT count(*), count(DISTINCT source) FROM kb_{schema[0]}.chunks")
        chunks, sources = rows.fetchone() or (0, 0)
    assert sources == len(files) and chunks == sum(d["chunks"] for d in docs)
