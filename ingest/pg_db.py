"""The Postgres database behind store = "postgres": URL, checks, schema and connection pools.

Shared tables live in the schema `rag` (`schema_version`, `kbs`); each knowledge base gets its
own schema `kb_<id>` (documents, chunks), so a KB is namespaced and dropped as one unit.
Opening a database checks, in one transaction and before anything is written: that it can be
reached, that its schema is not from a newer rag_app, and that the pgvector `vector` extension
is (or can be) installed. Each failure is one KnowledgeBaseError line.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any

from rag_app.errors import KnowledgeBaseError
from rag_app.settings import Settings, redact_url

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

SCHEMA_VERSION = 1
CONNECT_TIMEOUT_S = 5
POOL_MAX = 8
# pg_advisory_xact_lock key: schema changes (rag.*, a new KB) are made by one process at a time
SCHEMA_LOCK = 0x7261675F6462  # "rag_db"

SHARED_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS rag;
CREATE TABLE IF NOT EXISTS rag.schema_version(
  version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS rag.kbs(
  name text PRIMARY KEY, id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  embedding_model text NOT NULL, dimension integer NOT NULL CHECK (dimension > 0),
  revision bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
"""

_POOLS: dict[str, ConnectionPool] = {}
_LOCK = threading.Lock()
_TABLES_MADE: set[tuple[str, str]] = set()  # (url, ddl) already run by this process


def database_url(settings: Settings) -> str:
    """settings.database_url, else the local server of `rag db start`; else one clear error."""
    if settings.database_url is not None and settings.database_url.get_secret_value():
        return settings.database_url.get_secret_value()
    from ingest.pg_server import local_server

    url = local_server(settings.root).url()
    if url is None:
        raise KnowledgeBaseError(
            "store = postgres needs a database: set RAG_DATABASE_URL="
            "postgresql://USER:PASSWORD@HOST:PORT/DB, or run `rag db start` for a local one"
        )
    return url


def _reason(exc: BaseException) -> str:
    """psycopg's message on one line (it spans several for connection failures)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or exc.__class__.__name__


MISSING_EXTRA = (
    "store = postgres needs the postgres extra: run `bash scripts/setup.sh` "
    "(or `pip install 'rag-app[postgres]'`)"
)


def connect(url: str) -> psycopg.Connection[Any]:
    """One checked connection (autocommit); an unreachable or wrong URL is one clear line."""
    try:
        import pgvector.psycopg  # noqa: F401 - needed by every pooled connection
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise KnowledgeBaseError(f"{MISSING_EXTRA} ({exc})") from exc

    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as exc:
        raise KnowledgeBaseError(
            f"cannot connect to Postgres at {redact_url(url)}: {_reason(exc)} — check "
            "RAG_DATABASE_URL (user, password, host, port, database), or run `rag db start` "
            "and use the URL it prints"
        ) from exc


def _check_and_create(conn: psycopg.Connection[Any], url: str) -> None:
    """Version and extension checks, then the shared schema: one transaction, all or nothing."""
    import psycopg

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        row = conn.execute("SELECT to_regclass('rag.schema_version') IS NOT NULL").fetchone()
        if row and row[0]:
            found = conn.execute("SELECT max(version) FROM rag.schema_version").fetchone()
            version = int(found[0]) if found and found[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise KnowledgeBaseError(
                    f"the database at {redact_url(url)} has rag_app schema version {version}; "
                    f"this rag_app knows up to {SCHEMA_VERSION} — upgrade rag_app (nothing "
                    "was written)"
                )
        _ensure_vector(conn, url, psycopg.errors.InsufficientPrivilege)
        conn.execute(SHARED_SCHEMA)
        current = conn.execute("SELECT max(version) FROM rag.schema_version").fetchone()
        if not current or current[0] is None:
            conn.execute("INSERT INTO rag.schema_version(version) VALUES (%s)", (SCHEMA_VERSION,))


def _ensure_vector(conn: psycopg.Connection[Any], url: str, denied: type[Exception]) -> None:
    installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    if installed:
        return
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    if not available:
        raise KnowledgeBaseError(
            f"the Postgres server at {redact_url(url)} has no pgvector `vector` extension — "
            "install pgvector on it (https://github.com/pgvector/pgvector), or run "
            "`rag db start` for a local server that has it"
        )
    try:
        with conn.transaction():  # a savepoint: the refusal must not abort the outer checks
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except denied as exc:
        raise KnowledgeBaseError(
            f"the database at {redact_url(url)} lacks the pgvector `vector` extension and "
            "this user may not create it — have the database owner or a superuser run "
            "`CREATE EXTENSION vector;` in it (nothing was written)"
        ) from exc


def _configure(conn: psycopg.Connection[Any]) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)


def pool(url: str) -> ConnectionPool:
    """The process's connection pool for `url`, checked and set up on first use."""
    with _LOCK:
        found = _POOLS.get(url)
        if found is not None:
            return found
        with connect(url) as conn:
            _check_and_create(conn, url)
        from psycopg_pool import ConnectionPool

        made: ConnectionPool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            open=False,
            name="rag",
        )
        made.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        _POOLS[url] = made
        return made


def in_database(settings: Settings) -> bool:
    """Service state (keys, jobs, uploads, chats, golden sets, quality runs) lives in Postgres
    exactly when the KBs do (store = postgres): every replica and host then shares it."""
    return settings.store == "postgres"


def pool_with_tables(settings: Settings, ddl: str) -> ConnectionPool:
    """The process's pool for the configured database, with `ddl` (CREATE ... IF NOT EXISTS in
    the schema `rag`) run once per process under the schema lock."""
    url = database_url(settings)
    made = pool(url)
    with _LOCK:
        if (url, ddl) not in _TABLES_MADE:
            with made.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(ddl)  # type: ignore[arg-type]
            _TABLES_MADE.add((url, ddl))
    return made


def close_pools() -> None:
    with _LOCK:
        for made in _POOLS.values():
            made.close()
        _POOLS.clear()
        _TABLES_MADE.clear()


atexit.register(close_pools)
