"""`rag keys create|list|revoke` and the bind check of `rag serve` (real console entry point)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rag_app.api.keys import KeyStore
from rag_app.api.limits import RateLimiter
from rag_app.commands.serve import check_bind, is_loopback
from rag_app.errors import ConfigError
from rag_app.settings import Settings
from tests.conftest import rag_cli


def run_rag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return rag_cli(tmp_path / "data", *args, cwd=tmp_path)


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    created = run_rag(tmp_path, "keys", "create", "--role", "editor", "--kb", "a", "--kb", "b",
                      "--name", "ci", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("rag-") and key["kbs"] == ["a", "b"] and key["role"] == "editor"
    store = KeyStore.open(Settings(data_dir=tmp_path / "data"))
    assert store.check(key["key"]) is not None
    listed = run_rag(tmp_path, "keys", "list")
    assert key["id"] in listed.stdout and "editor" in listed.stdout
    assert key["key"] not in listed.stdout  # never shown again
    assert run_rag(tmp_path, "keys", "revoke", key["id"]).returncode == 0
    assert not store.check(key["key"]).active  # type: ignore[union-attr]
    again = run_rag(tmp_path, "keys", "revoke", key["id"])
    assert again.returncode == 1 and "no active API key" in again.stderr


def test_keys_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "keys", "create", "--role", "owner", "--kb", "a")
    assert result.returncode == 1 and "unknown role 'owner'" in result.stderr


@pytest.mark.parametrize(
    ("host", "has_keys", "allowed"),
    [("127.0.0.1", False, True), ("localhost", False, True), ("::1", False, True),
     ("0.0.0.0", False, False), ("192.168.1.5", False, False), ("0.0.0.0", True, True)],
)  # fmt: skip
def test_no_key_means_loopback_only(host: str, has_keys: bool, allowed: bool) -> None:
    assert is_loopback(host) == (host in ("127.0.0.1", "localhost", "::1"))
    if allowed:
        check_bind(host, has_keys)
    else:
        with pytest.raises(ConfigError, match="rag keys create"):
            check_bind(host, has_keys)


def test_rate_limiter_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one per second, burst of 60
    assert all(limiter.take("k") == 0.0 for _ in range(60))
    wait = limiter.take("k")
    assert 0.9 < wait <= 1.0 and limiter.take("other") == 0.0
    now[0] += 1.0
    assert limiter.take("k") == 0.0
    assert RateLimiter(0).take("k") == 0.0
