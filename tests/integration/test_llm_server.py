"""Real vLLM: chat, streaming, JSON schema, serve/reuse/stop lifecycle and failure modes."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from pydantic import BaseModel

from rag_app.errors import LLMError
from rag_app.serving import processes, server
from rag_app.serving.llm import chat_model, ensure_llm_endpoint, served_model_name
from rag_app.settings import Settings
from tests.conftest import TEST_PRESET, free_port, rag_cli, server_settings, session_data_dir

pytestmark = pytest.mark.integration

# An invented name: the model can only answer it by reading the prompt.
GROUNDED_PROMPT = (
    "Read the text and answer.\n"
    "Text: The ship Albatross sailed from the port of Velmora.\n"
    "Question: From which port did the Albatross sail?"
)


class City(BaseModel):
    name: str
    population: int


@pytest.fixture(scope="module")
def llm_settings(vllm_server: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("llm"),
        llm_base_url=vllm_server,
        llm_request_timeout=120.0,
        llm_max_tokens=48,
    )


def test_models_endpoint_lists_the_served_model(llm_settings: Settings, vllm_server: str) -> None:
    models = server.served_models(vllm_server)
    assert models, f"{vllm_server}/models lists nothing"
    assert served_model_name(vllm_server, llm_settings) == models[0]
    if not os.environ.get("RAG_TEST_LLM_BASE_URL"):  # our own server: we chose its name
        assert models == ["smollm2-135m-instruct"]
    assert ensure_llm_endpoint(llm_settings) == vllm_server.rstrip("/")


def test_chat_answer_comes_from_the_prompt(llm_settings: Settings) -> None:
    reply = chat_model(llm_settings).invoke(GROUNDED_PROMPT)
    assert "velmora" in str(reply.content).lower(), reply.content
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0


def test_streaming_yields_several_chunks(llm_settings: Settings) -> None:
    llm = chat_model(llm_settings, max_tokens=40)
    chunks = [c for c in llm.stream("Write three sentences about the sea.") if c.content]
    assert len(chunks) >= 5
    assert len("".join(str(c.content) for c in chunks).split()) >= 5


def test_json_schema_structured_output_parses(llm_settings: Settings) -> None:
    llm = chat_model(llm_settings, max_tokens=80)
    city = llm.with_structured_output(City, method="json_schema").invoke(
        "Give the name and population of a city as JSON."
    )
    assert isinstance(city, City)
    assert city.name.strip()


# --- failure modes: a real socket that misbehaves like a dead or dying server -------------------


@pytest.fixture
def misbehaving_server() -> Iterator[Callable[[bytes | None], str]]:
    """Start a local TCP server that reads a request, sends `reply` (or nothing) and then either
    closes the connection (a killed server) or hangs (reply=None); returns its base URL."""
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def start(reply: bytes | None) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def handle() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                sockets.append(conn)
                conn.recv(65536)
                if reply is not None:
                    conn.sendall(reply)
                    conn.close()  # like a process killed mid-response

        threading.Thread(target=handle, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/v1"

    yield start
    stop.set()
    for sock in sockets:
        sock.close()


_EVENT = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
)
# Headers and one chunked SSE event, then the connection drops: a server killed mid-stream.
STREAM_START = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + f"{len(_EVENT):x}\r\n".encode()
    + _EVENT
    + b"\r\n"
)


def quick_settings(tmp_path: Path, timeout: float = 3.0) -> Settings:
    return Settings(data_dir=tmp_path, llm_request_timeout=timeout, llm_max_retries=1)


def test_server_dying_mid_stream_raises_llm_error(
    tmp_path: Path, misbehaving_server: Callable[[bytes | None], str]
) -> None:
    url = misbehaving_server(STREAM_START)
    llm = chat_model(quick_settings(tmp_path), base_url=url, model="m")
    started = time.monotonic()
    with pytest.raises(LLMError, match="LLM at http://127.0.0.1"):
        for _ in llm.stream("hello"):
            pass
    assert time.monotonic() - started < 3.0


def complete_sse_reply(last_event: bytes) -> bytes:
    """A whole HTTP response: the "Hi" event, then `last_event`, then the connection ends."""
    body = _EVENT + last_event
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_aborted_stream_is_an_error_not_an_answer(
    tmp_path: Path, misbehaving_server: Callable[[bytes | None], str]
) -> None:
    """vLLM ends requests it drops while stopping with finish_reason "abort", not an HTTP error."""
    aborted = (
        b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":" tru"},"finish_reason":"abort"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    url = misbehaving_server(complete_sse_reply(aborted))
    llm = chat_model(quick_settings(tmp_path), base_url=url, model="m")
    with pytest.raises(LLMError, match="finish_reason='abort'"):
        for _ in llm.stream("hello"):
            pass


def test_stream_closed_cleanly_mid_answer_is_an_error_not_an_answer(
    tmp_path: Path, misbehaving_server: Callable[[bytes | None], str]
) -> None:
    """A server shutting down may end the event stream without a finish_reason: a fragment."""
    fragment = (
        b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":" tru"},"finish_reason":null}]}\n\n'
    )
    url = misbehaving_server(complete_sse_reply(fragment))
    llm = chat_model(quick_settings(tmp_path), base_url=url, model="m")
    received: list[str] = []
    with pytest.raises(LLMError, match="closed the stream before finishing"):
        for chunk in llm.stream("hello"):
            received.append(str(chunk.content))
    assert "".join(received).startswith("Hi tru")  # the fragment streamed, then the error


def test_server_closing_without_answer_raises_llm_error(
    tmp_path: Path, misbehaving_server: Callable[[bytes | None], str]
) -> None:
    url = misbehaving_server(b"")
    started = time.monotonic()
    with pytest.raises(LLMError, match="lost connection"):
        chat_model(quick_settings(tmp_path), base_url=url, model="m").invoke("hello")
    assert time.monotonic() - started < 6.0


def test_hung_server_times_out_with_llm_error(
    tmp_path: Path, misbehaving_server: Callable[[bytes | None], str]
) -> None:
    url = misbehaving_server(None)
    settings = quick_settings(tmp_path, timeout=2.0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="did not answer in time"):
        chat_model(settings, base_url=url, model="m").invoke("hello")
    # one try plus llm_max_retries=1 retry, each bounded by the request timeout
    assert time.monotonic() - started < 2.0 * (settings.llm_max_retries + 1) + 3.0


def test_unreachable_base_url_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(data_dir=tmp_path, llm_base_url=url)
    with pytest.raises(LLMError, match=f"cannot reach RAG_LLM_BASE_URL={url}"):
        chat_model(settings)
    assert not settings.run_dir.exists()  # nothing was started instead


def status_reply(code: int, reason: str) -> bytes:
    body = b'{"error": "x"}'
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip


def test_base_url_probe_tells_a_wrong_url_from_a_failing_backend(
    tmp_path: Path, misbehaving_server: Callable[[bytes | None], str]
) -> None:
    # 404: nothing OpenAI-like lives there (a URL without /v1, say): refused before any request
    wrong = misbehaving_server(status_reply(404, "Not Found"))
    with pytest.raises(LLMError, match=f"cannot reach RAG_LLM_BASE_URL={wrong}.*404"):
        chat_model(Settings(data_dir=tmp_path, llm_base_url=wrong))
    # 500: a live endpoint whose backend failed, as a router answers while one of its servers has
    # just died; the client is made, and a request that still fails says so itself
    failing = misbehaving_server(status_reply(500, "Internal Server Error"))
    settings = quick_settings(tmp_path, timeout=5.0).model_copy(update={"llm_base_url": failing})
    assert ensure_llm_endpoint(settings) == failing
    with pytest.raises(LLMError, match="refused the request with HTTP 500"):
        chat_model(settings, model="m").invoke("hello")
    assert not settings.run_dir.exists()


def run_rag(data_dir: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return rag_cli(data_dir, *args, timeout=1000, RAG_LLM_PORT=str(port),
                   RAG_LLM_PRESET=TEST_PRESET, RAG_LLM_STARTUP_TIMEOUT="900")  # fmt: skip


def test_occupied_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        result = run_rag(tmp_path, port, "llm", "serve")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "in use" in lines[0], result.stderr
    assert not server.pid_path(Settings(data_dir=tmp_path, llm_port=port)).exists()


def test_failed_start_says_why_with_the_log_tail(tmp_path: Path) -> None:
    """A model folder vLLM cannot load: serve() reports the exit and the log's last lines."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    (broken / "tokenizer_config.json").write_text('{"chat_template": "{{ messages }}"}')
    settings = Settings(data_dir=tmp_path / "data", llm_model=str(broken), llm_port=free_port())
    with pytest.raises(LLMError, match="exited during start-up") as info:
        server.serve(settings)
    message = str(info.value)
    assert "Log tail:" in message and str(server.log_path(settings)) in message
    assert len(message.splitlines()) > 3  # the tail itself is shown
    assert not server.pid_path(settings).exists()


@pytest.mark.slow
def test_serve_reuse_stop_mid_request_leaves_no_orphans(
    vllm_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`rag llm serve` reuses (or starts) vLLM; `rag llm stop` during a streaming request ends
    every process and the caller gets an LLMError within the request timeout.

    It takes over the session's server (conftest runs this test last), so a test session still
    starts only one vLLM; with $RAG_TEST_LLM_BASE_URL it starts its own on the next port.
    """
    port = int(os.environ.get("RAG_TEST_LLM_PORT", "8765"))
    if os.environ.get("RAG_TEST_LLM_BASE_URL"):
        port += 1
    settings = server_settings(session_data_dir(tmp_path_factory), port)
    first = run_rag(settings.data_dir, port, "llm", "serve")
    assert first.returncode == 0, first.stdout + first.stderr
    try:
        assert server.served_models(server.base_url(settings)) == ["smollm2-135m-instruct"]
        status = server.status(settings)
        assert status.healthy and status.managed and status.pid
        family = processes.server_family(status.pid)
        assert len(family) >= 2  # API server plus engine core (and workers)
        started = time.monotonic()
        again = run_rag(settings.data_dir, port, "llm", "serve")
        assert again.returncode == 0 and f"pid {status.pid}" in again.stdout
        assert time.monotonic() - started < 30  # reused, not restarted
        assert_stop_mid_request(settings, port, family)
    finally:
        server.stop(settings)


def assert_stop_mid_request(settings: Settings, port: int, family: list[psutil.Process]) -> None:
    """The caller of a request cut by `rag llm stop` gets an LLMError, never a silent fragment.

    How far the request got before the stop depends on the host's speed, so a whole answer
    (finish_reason "length" after every token asked for) is also a right outcome; a stream that
    ends early without an error, or that hangs, is not.
    """
    timeout = 15.0
    tokens = settings.llm_max_model_len - 200  # as long as the context allows: most hosts stop it
    llm = chat_model(
        settings.model_copy(update={"llm_request_timeout": timeout}),
        max_tokens=tokens,
        temperature=0.0,
        # vLLM's min_tokens keeps the model generating to max_tokens, whatever it writes
        extra_body={"min_tokens": tokens},
    )
    stopper: list[subprocess.CompletedProcess[str]] = []
    stopped_at: list[float] = []
    last_metadata: dict[str, object] = {}
    received = 0
    error: LLMError | None = None

    def stop() -> None:
        stopper.append(run_rag(settings.data_dir, port, "llm", "stop"))
        stopped_at.append(time.monotonic())

    try:
        for chunk in llm.stream("Count from 1 to 1000, separated by commas."):
            received += 1
            last_metadata = chunk.response_metadata or last_metadata
            if received == 1:
                threading.Thread(target=stop).start()
    except LLMError as exc:
        error = exc
    ended = time.monotonic()
    deadline = time.monotonic() + 60
    while not stopped_at and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stopper and stopper[0].returncode == 0 and "stopped" in stopper[0].stdout, stopper
    after_stop = ended - stopped_at[0]  # < 0: the stream broke before `rag llm stop` returned
    outcome = f"{received} chunks, ended {after_stop:+.1f} s after stop: {last_metadata} {error}"
    if error is None:  # the host finished the whole answer before the stop reached the engine
        assert last_metadata.get("finish_reason") == "length", outcome
    else:
        assert received >= 1, outcome
        # once the server is gone the stream ends at once, at worst after one read timeout
        assert after_stop < timeout + 5.0, outcome
    alive = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"orphans left: {alive}"
    assert not server.pid_path(settings).exists()
    assert run_rag(settings.data_dir, port, "llm", "status").returncode == 1
