"""HTTP API over a real KB (fake embeddings, fake chat model): chat, REST, bad input, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from rag_app.api import create_app
from rag_app.api.replies import SseStream, relay
from rag_app.errors import LLMError
from rag_app.pipeline import MAX_QUESTION_CHARS
from rag_app.records import Answer, Citation
from tests.api_support import api_settings, build_kbs, make_app, sse_events
from tests.fakes import HashingEmbeddings

QUESTION = "Who built the lighthouse?"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(api_settings(tmp_path))) as c:
        yield c


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "rag:docs", "messages": [{"role": "user", "content": QUESTION}], **extra}


def wait_job(client: TestClient, job_id: str) -> dict[str, Any]:
    for _ in range(200):
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


# --- OpenAI-compatible chat ------------------------------------------------------------------
def test_models_list_one_per_kb_with_mode_variants(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert {"rag:docs", "rag:docs:cited", "rag:docs:agent", "rag:secret"} <= set(ids)
    assert client.get("/v1/models/rag:docs:cot").json()["id"] == "rag:docs:cot"


def test_chat_non_stream_carries_verified_citations(client: TestClient) -> None:
    reply = client.post("/v1/chat/completions", json=chat_body())
    assert reply.status_code == 200, reply.text
    data = reply.json()
    message = data["choices"][0]["message"]
    assert data["object"] == "chat.completion" and message["role"] == "assistant"
    assert message["content"] == "Elena Marsh"  # the passage's own words, not the draft
    rag = message["rag"]
    assert rag["kind"] == "confident" and rag["kb"] == "docs" and rag["mode"] == "direct"
    assert rag["citations"][0]["source"] == "lighthouse.txt"
    assert "Elena Marsh" in rag["citations"][0]["quote"]
    assert rag["hits"] and rag["timings"]["total_s"] > 0 and rag["answer_id"] == data["id"]
    # clients that drop unknown fields (LangChain) fetch the record by the completion id
    record = client.get(f"/v1/answers/{data['id']}").json()
    assert record["citations"] == rag["citations"]


def test_chat_stream_sends_draft_then_verified_content_then_record(client: TestClient) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply.text)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("rag_draft", "") for d in deltas) == "elena marsh"
    assert "".join(d.get("content") or "" for d in deltas) == "Elena Marsh"
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["choices"][0]["delta"]["rag"]["citations"][0]["source"] == "lighthouse.txt"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] >= 0


def test_mode_and_top_k_from_model_name_and_extra_field(client: TestClient) -> None:
    data = client.post("/v1/chat/completions", json=chat_body(model="rag:docs:cot")).json()
    assert data["choices"][0]["message"]["rag"]["mode"] == "cot"
    body = chat_body(rag={"mode": "direct", "top_k": 1}, model="rag:docs:cited")
    rag = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["rag"]
    assert rag["mode"] == "direct" and len(rag["hits"]) == 1


def test_history_reaches_the_condense_step(tmp_path: Path) -> None:
    # the condense step asks the model first (reply 1), then the answer prompt (reply 2)
    app = make_app(api_settings(tmp_path), ["Who built the Harbor Point Lighthouse?", ANSWER_JSON])
    messages = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "Tell me about the Harbor Point Lighthouse."},
        {"role": "assistant", "content": [{"type": "text", "text": "It is a lighthouse."}]},
        {"role": "user", "content": "Who built it?"},
    ]
    with TestClient(app) as client:
        reply = client.post(
            "/v1/chat/completions", json={"model": "rag:docs", "messages": messages}
        )
    rag = reply.json()["choices"][0]["message"]["rag"]
    assert rag["question"] == "Who built it?"
    assert rag["standalone_question"] == "Who built the Harbor Point Lighthouse?"


ANSWER_JSON = '{"answer": "elena marsh"}'


def _answer(kind: str, text: str) -> Answer:
    cite = Citation(marker=1, chunk_id="c", source="s.txt", quote=f"{text} wrote it.")
    return Answer(question="q", standalone_question="q", text=text, abstained=kind == "abstained",
                  kind=kind, mode="direct", prompt_name="qa", citations=[cite])  # type: ignore[arg-type]  # fmt: skip


def test_tentative_answer_content_is_labelled_for_stock_clients(tmp_path: Path) -> None:
    with TestClient(make_app(api_settings(tmp_path))) as client:
        state = client.app.state.api  # type: ignore[attr-defined]
        stream = SseStream(state, "local", "chatcmpl-x", "rag:docs", "docs", usage=False)
        body = b"".join(stream.events(iter(["draft", _answer("tentative", "Marsh")])))
    events = sse_events(body.decode())
    contents = [e["choices"][0]["delta"].get("content") for e in events[:-1]]
    assert "Probably Marsh (not verified)" in contents
    final = events[-2]["choices"][0]["delta"]["rag"]
    assert final["kind"] == "tentative" and final["display_text"] == "Probably Marsh (not verified)"


def test_client_dropping_a_stream_stops_the_answer(tmp_path: Path) -> None:
    closed: list[bool] = []

    def answer_stream() -> Iterator[str | Answer]:
        try:
            yield "a"
            yield "b"
            yield _answer("confident", "ab")
        finally:
            closed.append(True)

    with TestClient(make_app(api_settings(tmp_path))) as client:
        state = client.app.state.api  # type: ignore[attr-defined]
        items = answer_stream()
        events = SseStream(state, "local", "id", "rag:docs", "docs", False).events(items)
        next(events), next(events)  # role chunk, first draft token: then the client goes away
        events.close()
        metrics = client.get("/metrics").text
    assert closed == [True]
    assert "rag_api_stream_disconnects_total 1.0" in metrics


def test_relay_closes_the_event_generator_when_the_response_ends_early() -> None:
    closed: list[bool] = []

    def events() -> Iterator[bytes]:
        try:
            yield b"a"
            yield b"b"
        finally:
            closed.append(True)

    async def read_one() -> bytes:
        body = relay(events())  # type: ignore[arg-type]
        first = await body.__anext__()
        await body.aclose()  # what the server does when the client is gone
        return first

    assert anyio.run(read_one) == b"a" and closed == [True]


class DyingChatModel(FakeListChatModel):
    """Streams one token, then fails like a model server that died mid-request."""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content='{"answer": "el'))
        raise LLMError("lost connection to the LLM at http://x/v1: is the server running?")


def test_model_server_dying_mid_stream_ends_in_an_error_event(tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    embeddings = HashingEmbeddings()
    build_kbs(settings, embeddings)
    app = create_app(settings, embeddings, DyingChatModel(responses=["x"]))
    with TestClient(app) as client:
        reply = client.post("/v1/chat/completions", json=chat_body(stream=True))
        events = sse_events(reply.text)
        assert reply.status_code == 200 and events[-1] == "[DONE]"
        error = events[-2]["error"]
        assert error["code"] == "llm_unavailable" and "lost connection" in error["message"]
        plain = client.post("/v1/chat/completions", json=chat_body())
        assert plain.status_code == 503 and plain.json()["error"]["code"] == "llm_unavailable"
        assert client.get("/healthz").json()["status"] == "ok"  # still serving


# --- bad input -----------------------------------------------------------------------------
def _post(client: TestClient, path: str, content: bytes, kind: str = "application/json") -> Any:
    return client.post(path, content=content, headers={"Content-Type": kind})


@pytest.mark.parametrize(
    ("send", "status", "says"),
    [
        (
            lambda c: _post(c, "/v1/chat/completions", b'{"model": "rag:docs", "messages": ['),
            400,
            "malformed JSON",
        ),
        (lambda c: _post(c, "/v1/chat/completions", b"{}", "text/plain"), 415, "Content-Type"),
        (
            lambda c: c.post("/v1/chat/completions", json=chat_body(colour="red")),
            400,
            "colour: unknown field",
        ),
        (
            lambda c: c.post(
                "/v1/chat/completions",
                json={"model": "rag:docs", "messages": [{"role": "user", "content": "   "}]},
            ),
            400,
            "question is empty",
        ),
        (
            lambda c: c.post(
                "/v1/chat/completions",
                json={
                    "model": "rag:docs",
                    "messages": [{"role": "user", "content": "x" * (MAX_QUESTION_CHARS + 1)}],
                },
            ),
            400,
            "limit is",
        ),
        (
            lambda c: c.post(
                "/v1/chat/completions",
                json={
                    "model": "rag:docs",
                    "messages": [{"role": "user", "content": "x" * 2_000_000}],
                },
            ),
            413,
            "over the limit",
        ),
        (
            lambda c: c.post("/v1/chat/completions", json=chat_body(model="gpt-4o")),
            404,
            "unknown model",
        ),
        (
            lambda c: c.post("/v1/chat/completions", json=chat_body(model="rag:nope")),
            404,
            "does not exist",
        ),
        (
            lambda c: c.post("/v1/chat/completions", json=chat_body(model="rag:docs:poem")),
            404,
            "unknown mode",
        ),
        (lambda c: c.post("/v1/chat/completions", json=chat_body(n=2)), 400, "n must be 1"),
        (
            lambda c: c.post(
                "/v1/chat/completions",
                json={"model": "rag:docs", "messages": [{"role": "assistant", "content": "hi"}]},
            ),
            400,
            "last message",
        ),
        (
            lambda c: c.post("/v1/chat/completions", json={"model": "rag:docs", "messages": []}),
            400,
            "messages",
        ),
        (lambda c: c.post("/v1/search", json={"kb": "docs", "query": " "}), 400, "query is empty"),
        (
            lambda c: c.post("/v1/answers", json={"kb": "docs", "question": "q", "mode": "poem"}),
            400,
            "mode",
        ),
        (
            lambda c: c.post("/v1/answers", json={"kb": "../x", "question": "q"}),
            400,
            "invalid knowledge base name",
        ),
        (lambda c: c.get("/v1/nowhere"), 404, "no such endpoint"),
        (lambda c: c.get("/v1/jobs/job-nope"), 404, "no job"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(
    client: TestClient, send: Any, status: int, says: str
) -> None:
    reply = send(client)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert says in error["message"] and error["type"]
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200


def test_malformed_json_names_no_parameter_but_says_where_it_broke(client: TestClient) -> None:
    body = b'{"model": "rag:docs", "messages": ['
    error = _post(client, "/v1/chat/completions", body).json()["error"]
    assert error["param"] is None  # was "36", the parser's offset, which is no parameter
    assert f"malformed JSON at character {len(body)}" in error["message"]
    assert error["code"] == "invalid_request"
    # a bad field still names it
    field = client.post("/v1/chat/completions", json=chat_body(colour="red")).json()["error"]
    assert field["param"] == "colour"


# --- REST ----------------------------------------------------------------------------------
def test_upload_ingests_in_a_job_then_search_delete_and_reingest(client: TestClient) -> None:
    files = {
        "files": ("castle.txt", b"Castle Wren was built by Tomas Alder in 1602.", "text/plain")
    }
    reply = client.post("/v1/kbs/docs/documents", files=files)
    assert reply.status_code == 202, reply.text
    job = wait_job(client, reply.json()["job"]["id"])
    assert job["status"] == "done" and job["files_done"] == job["files_total"] == 1
    assert job["files"][0]["status"] == "added" and job["report"]["added"] == 1
    docs = client.get("/v1/kbs/docs/documents").json()["data"]
    castle = next(d for d in docs if d["name"] == "castle.txt")
    hits = client.post("/v1/search", json={"kb": "docs", "query": "Castle Wren", "k": 1}).json()
    assert hits["hits"][0]["chunk"]["source"] == castle["source"]
    again = client.post(f"/v1/kbs/docs/documents/{castle['id']}/reingest")
    assert wait_job(client, again.json()["job"]["id"])["files"][0]["status"] == "unchanged"
    assert client.delete(f"/v1/kbs/docs/documents/{castle['id']}").json()["deleted"]
    names = [d["name"] for d in client.get("/v1/kbs/docs/documents").json()["data"]]
    assert "castle.txt" not in names and not Path(castle["source"]).exists()


def test_unreadable_upload_is_reported_per_file_and_removed(client: TestClient) -> None:
    files = [("files", ("good.txt", b"Good text about ships.", "text/plain")),
             ("files", ("bad.pdf", b"not a pdf at all", "application/pdf"))]  # fmt: skip
    job = wait_job(client, client.post("/v1/kbs/docs/documents", files=files).json()["job"]["id"])
    by_name = {f["name"]: f for f in job["files"]}
    assert by_name["good.txt"]["status"] == "added"
    assert by_name["bad.pdf"]["status"] == "failed" and by_name["bad.pdf"]["reason"]
    assert len(job["report"]["failed"]) == 1
    assert not Path(by_name["bad.pdf"]["source"]).exists()


def test_upload_of_content_already_in_the_kb_is_reported_not_added(client: TestClient) -> None:
    text = b"Castle Wren was built by Tomas Alder in 1602."
    first = client.post("/v1/kbs/docs/documents", files={"files": ("castle.txt", text)})
    original = wait_job(client, first.json()["job"]["id"])["files"][0]["source"]
    second = client.post("/v1/kbs/docs/documents", files={"files": ("castle copy.txt", text)})
    job = wait_job(client, second.json()["job"]["id"])
    [report] = job["files"]
    assert report["status"] == "duplicate"
    assert report["reason"] == f"already in the KB as {original}"
    assert job["report"]["duplicates"][0]["same_as"] == original
    assert not Path(report["source"]).exists()  # the upload folder holds KB documents only
    names = [d["name"] for d in client.get("/v1/kbs/docs/documents").json()["data"]]
    assert names.count("castle.txt") == 1 and "castle copy.txt" not in names


@pytest.mark.parametrize(
    ("files", "kind", "status", "says"),
    [
        ({"files": ("../../etc/passwd", b"x", "text/plain")}, None, 400, "not a plain file name"),
        ({"files": ("a\\..\\b.txt", b"x", "text/plain")}, None, 400, "not a plain file name"),
        ({"files": ("big.txt", b"x" * 3000, "text/plain")}, None, 413, "limited to"),
        ({"other": ("a.txt", b"x", "text/plain")}, None, 400, "no files"),
        (None, "application/json", 415, "multipart/form-data"),
    ],
)
def test_bad_uploads_are_refused(
    tmp_path: Path, files: Any, kind: str | None, status: int, says: str
) -> None:
    app = make_app(api_settings(tmp_path, max_upload_mb=0.002))
    with TestClient(app) as client:
        if files is None:
            reply = client.post(
                "/v1/kbs/docs/documents", content=b"{}", headers={"Content-Type": kind}
            )
        else:
            reply = client.post("/v1/kbs/docs/documents", files=files)
        assert reply.status_code == status, reply.text
        assert says in reply.json()["error"]["message"]
        assert not list((tmp_path / "data" / "uploads").glob("**/passwd"))
        assert client.get("/healthz").status_code == 200


def test_kb_create_stats_delete(client: TestClient) -> None:
    assert client.post("/v1/kbs", json={"name": "new"}).status_code == 201
    assert client.post("/v1/kbs", json={"name": "new"}).status_code == 409
    assert client.get("/v1/kbs/docs").json()["documents"] == 2
    assert {k["name"] for k in client.get("/v1/kbs").json()["data"]} == {"docs", "new", "secret"}
    assert client.delete("/v1/kbs/new").json()["deleted"]
    assert client.get("/v1/kbs/new").status_code == 404


def test_answers_endpoint_returns_the_full_record(client: TestClient) -> None:
    reply = client.post("/v1/answers", json={"kb": "docs", "question": QUESTION, "top_k": 1})
    answer = Answer.model_validate(reply.json())
    assert answer.text == "Elena Marsh" and answer.citations and len(answer.hits) == 1


def test_rate_limit_per_key(tmp_path: Path) -> None:
    with TestClient(make_app(api_settings(tmp_path, api_rate_limit=2))) as client:
        assert client.get("/v1/kbs").status_code == 200
        assert client.get("/v1/kbs").status_code == 200
        third = client.get("/v1/kbs")
    assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
    assert third.json()["error"]["type"] == "rate_limit_error"


def test_healthz_and_metrics(client: TestClient) -> None:
    health = {"status": "ok", "keys_required": False, "replica": "local"}
    assert client.get("/healthz").json() == health
    client.post("/v1/chat/completions", json=chat_body())
    client.post("/v1/chat/completions", json=chat_body(model="rag:nope"))
    text = client.get("/metrics").text
    assert (
        'rag_api_requests_total{endpoint="/v1/chat/completions",method="POST",status="200"} 1.0'
        in text
    )
    assert 'rag_api_errors_total{endpoint="/v1/chat/completions",kind="404"} 1.0' in text
    assert 'rag_api_tokens_total{endpoint="/v1/chat/completions",kind="completion"}' in text
    assert "rag_api_request_seconds_bucket" in text


def test_openapi_document_describes_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = ["/v1/chat/completions", "/v1/models", "/v1/kbs", "/v1/kbs/{kb}/documents"]
    expected += ["/v1/jobs/{job_id}", "/v1/search", "/v1/answers", "/healthz", "/metrics"]
    assert set(expected) <= set(paths)
    assert client.get("/docs").status_code == 200
