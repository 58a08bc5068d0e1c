"""Access control of the HTTP API: keys, roles and per-KB access, across every endpoint.

Key A (docs only) must not list, search, ask, upload to or delete knowledge base B (secret);
a reader must not write; a revoked key is refused at once; listings never show other KBs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag_app.api.kbs import doc_id
from rag_app.api.keys import KeyStore
from tests.api_support import api_settings, bearer, make_app

UPLOAD = {"files": ("note.txt", b"A note about lighthouses.", "text/plain")}


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]  # label -> plain key
    store: KeyStore
    docs_doc: str  # id of a document in `docs`
    secret_doc: str  # id of a document in `secret`


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = api_settings(tmp_path)
    app = make_app(settings)
    store = KeyStore.open(settings)
    keys = {}
    for label, role, kbs in [
        ("admin", "admin", ["*"]),
        ("reader_docs", "reader", ["docs"]),
        ("editor_docs", "editor", ["docs"]),
        ("reader_secret", "reader", ["secret"]),
        ("revoked", "admin", ["*"]),
    ]:
        record, plain = store.create(label, role, kbs)
        keys[label] = plain
        if label == "revoked":
            store.revoke(record.id)
    with TestClient(app) as client:
        yield World(client, keys, store, doc_id("lighthouse.txt"), doc_id("plans.txt"))
    store.close()


def call(world: World, who: str | None, method: str, path: str, **kw: Any) -> Any:
    headers = bearer(world.keys[who]) if who in world.keys else {}
    if who is not None and who not in world.keys:
        headers = {"Authorization": who}  # a raw header value
    return world.client.request(method, path, headers=headers, **kw)


def chat(model: str) -> dict[str, Any]:
    return {"json": {"model": model, "messages": [{"role": "user", "content": "code?"}]}}


NEGATIVE = [
    # (who, method, path, request kwargs, status, code)
    (None, "GET", "/v1/models", {}, 401, "missing_api_key"),
    (None, "POST", "/v1/chat/completions", chat("rag:docs"), 401, "missing_api_key"),
    (None, "GET", "/metrics", {}, 401, "missing_api_key"),
    ("Bearer rag-0000.nope", "GET", "/v1/kbs", {}, 401, "invalid_api_key"),
    ("Bearer not-a-key", "GET", "/v1/kbs", {}, 401, "invalid_api_key"),
    ("Basic YWRtaW46YWRtaW4=", "GET", "/v1/kbs", {}, 401, "missing_api_key"),
    ("revoked", "GET", "/v1/kbs", {}, 401, "revoked_api_key"),
    ("revoked", "POST", "/v1/chat/completions", chat("rag:docs"), 401, "revoked_api_key"),
    ("reader_docs", "GET", "/v1/kbs/secret", {}, 403, "kb_forbidden"),
    ("reader_docs", "GET", "/v1/kbs/secret/documents", {}, 403, "kb_forbidden"),
    ("reader_docs", "GET", "/v1/models/rag:secret", {}, 403, "kb_forbidden"),
    ("reader_docs", "POST", "/v1/chat/completions", chat("rag:secret"), 403, "kb_forbidden"),
    ("reader_docs", "POST", "/v1/chat/completions", chat("rag:secret:agent"), 403, "kb_forbidden"),
    (
        "reader_docs",
        "POST",
        "/v1/search",
        {"json": {"kb": "secret", "query": "code"}},
        403,
        "kb_forbidden",
    ),
    (
        "reader_docs",
        "POST",
        "/v1/answers",
        {"json": {"kb": "secret", "question": "code?"}},
        403,
        "kb_forbidden",
    ),
    # a KB outside the key's list is refused the same way whether it exists or not (no leak)
    ("reader_docs", "GET", "/v1/kbs/no-such-kb", {}, 403, "kb_forbidden"),
    ("reader_docs", "POST", "/v1/kbs/docs/documents", {"files": UPLOAD}, 403, "insufficient_role"),
    ("reader_docs", "DELETE", "/v1/kbs/docs/documents/{docs_doc}", {}, 403, "insufficient_role"),
    (
        "reader_docs",
        "POST",
        "/v1/kbs/docs/documents/{docs_doc}/reingest",
        {},
        403,
        "insufficient_role",
    ),
    ("reader_docs", "POST", "/v1/kbs", {"json": {"name": "mine"}}, 403, "insufficient_role"),
    ("reader_docs", "DELETE", "/v1/kbs/docs", {}, 403, "insufficient_role"),
    ("editor_docs", "POST", "/v1/kbs/secret/documents", {"files": UPLOAD}, 403, "kb_forbidden"),
    ("editor_docs", "DELETE", "/v1/kbs/secret/documents/{secret_doc}", {}, 403, "kb_forbidden"),
    (
        "editor_docs",
        "POST",
        "/v1/kbs/secret/documents/{secret_doc}/reingest",
        {},
        403,
        "kb_forbidden",
    ),
    ("editor_docs", "POST", "/v1/kbs", {"json": {"name": "other"}}, 403, "kb_forbidden"),
    ("editor_docs", "DELETE", "/v1/kbs/docs", {}, 403, "insufficient_role"),
    (
        "reader_secret",
        "POST",
        "/v1/search",
        {"json": {"kb": "docs", "query": "who"}},
        403,
        "kb_forbidden",
    ),
]


@pytest.mark.parametrize(("who", "method", "path", "kw", "status", "code"), NEGATIVE)
def test_refused(
    world: World, who: str | None, method: str, path: str, kw: Any, status: int, code: str
) -> None:
    path = path.format(docs_doc=world.docs_doc, secret_doc=world.secret_doc)
    reply = call(world, who, method, path, **kw)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code and error["message"]
    assert "4711" not in reply.text  # nothing of the secret KB leaks in an error
    # nothing was changed by the refused request
    assert call(world, "admin", "GET", "/v1/kbs/secret").json()["documents"] == 1
    assert call(world, "admin", "GET", "/v1/kbs/docs").json()["documents"] == 2


def test_listings_show_only_the_keys_kbs(world: World) -> None:
    models = [m["id"] for m in call(world, "reader_docs", "GET", "/v1/models").json()["data"]]
    assert models and all(m.startswith("rag:docs") for m in models)
    kbs = call(world, "reader_docs", "GET", "/v1/kbs").json()["data"]
    assert kbs == [{"name": "docs"}]
    admin_kbs = {k["name"] for k in call(world, "admin", "GET", "/v1/kbs").json()["data"]}
    assert admin_kbs == {"docs", "secret"}


def test_jobs_and_answers_of_another_key_are_invisible(world: World) -> None:
    started = call(world, "editor_docs", "POST", "/v1/kbs/docs/documents", files=UPLOAD)
    job_id = started.json()["job"]["id"]
    for _ in range(200):
        if call(world, "editor_docs", "GET", f"/v1/jobs/{job_id}").json()["status"] == "done":
            break
        time.sleep(0.05)
    assert call(world, "reader_docs", "GET", f"/v1/jobs/{job_id}").status_code == 404
    assert call(world, "reader_secret", "GET", f"/v1/jobs/{job_id}").status_code == 404
    assert call(world, "reader_docs", "GET", "/v1/jobs").json()["data"] == []
    assert call(world, "admin", "GET", f"/v1/jobs/{job_id}").json()["status"] == "done"
    reply = call(world, "editor_docs", "POST", "/v1/chat/completions", **chat("rag:docs"))
    answer_id = reply.json()["id"]
    assert call(world, "editor_docs", "GET", f"/v1/answers/{answer_id}").status_code == 200
    assert call(world, "reader_docs", "GET", f"/v1/answers/{answer_id}").status_code == 404


def test_revoked_key_is_refused_at_once(world: World) -> None:
    record, plain = world.store.create("temp", "reader", ["docs"])
    world.keys["temp"] = plain
    assert call(world, "temp", "GET", "/v1/kbs").status_code == 200
    assert world.store.revoke(record.id)
    reply = call(world, "temp", "GET", "/v1/kbs")
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "revoked_api_key"


def test_tampered_secret_with_a_real_id_is_refused(world: World) -> None:
    plain = world.keys["admin"]
    assert call(world, f"Bearer {plain[:-1]}{'A' if plain[-1] != 'A' else 'B'}", "GET",
                "/v1/kbs").status_code == 401  # fmt: skip


def test_allowed_calls_work(world: World) -> None:
    assert call(world, "reader_docs", "POST", "/v1/chat/completions", **chat("rag:docs")).is_success
    assert call(world, "reader_secret", "POST", "/v1/search",
                json={"kb": "secret", "query": "vault code"}).is_success  # fmt: skip
    assert call(world, None, "GET", "/healthz").json()["keys_required"] is True
    assert call(world, "admin", "DELETE", "/v1/kbs/secret").json()["deleted"]


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    store = KeyStore.open(api_settings(tmp_path))
    record, plain = store.create("k", "editor", ["a", "b"])
    raw = store.path.read_bytes() + b"".join(
        p.read_bytes() for p in store.path.parent.glob("*") if p != store.path
    )
    assert plain.encode() not in raw and plain.split(".", 1)[1].encode() not in raw
    assert store.check(plain) == record and store.check(plain + "x") is None
    assert [k.id for k in store.all_keys()] == [record.id]
    assert store.revoke(record.id) and not store.revoke(record.id)
    assert not store.has_active()
