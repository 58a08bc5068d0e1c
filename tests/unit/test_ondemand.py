"""On-demand model server: the start-up notice, the idle decision and watcher, `rag llm status`.

No vLLM here: a fake OpenAI-compatible HTTP server (models, chat, metrics) and sleeping
processes whose command lines name vllm or the watcher stand in for the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from rag_app.errors import LLMError, ModelError
from rag_app.serving import idle_watch, ondemand, runstate, server
from rag_app.serving.llm import ServedChatOpenAI, chat_model
from rag_app.settings import Settings
from tests.conftest import free_port, rag_cli

METRICS = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="m"}} {running}
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="m"}} 0.0
# TYPE vllm:request_success counter
vllm:request_success_total{{finished_reason="stop",model_name="m"}} {done}
vllm:request_success_total{{finished_reason="length",model_name="m"}} 1.0
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{{model_name="m"}} 40.0
"""
CHAT_REPLY = {
    "id": "x",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Velmora"},
            "finish_reason": "stop",
        }
    ],  # fmt: skip
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


@dataclass
class FakeVllm:
    """What the tests read of a vLLM server: /v1/models, /v1/chat/completions, /metrics."""

    port: int
    finished: float = 0.0
    chats: list[str] = field(default_factory=list)


def serve_fake(port: int) -> tuple[FakeVllm, ThreadingHTTPServer]:
    state = FakeVllm(port)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: str, kind: str = "application/json") -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                self._send(METRICS.format(running=0.0, done=state.finished), "text/plain")
            else:
                self._send(json.dumps({"data": [{"id": "m"}]}))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            state.chats.append(self.rfile.read(length).decode())
            self._send(json.dumps(CHAT_REPLY))

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return state, httpd


@pytest.fixture
def fake_vllm() -> Iterator[FakeVllm]:
    state, httpd = serve_fake(free_port())
    yield state
    httpd.shutdown()
    httpd.server_close()


def sleeper(name: str) -> subprocess.Popen[bytes]:
    """A process whose command line names `name` (server.stop checks it before killing)."""
    code = "import time; time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code, name], start_new_session=True)


def record_server(settings: Settings, pid: int, **extra: object) -> Path:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "port": settings.llm_port, "served_name": "m", **extra}
    server.pid_path(settings).write_text(json.dumps(record))
    return server.pid_path(settings)


# --- the pure parts ------------------------------------------------------------------------


def test_idle_decision() -> None:
    assert ondemand.is_idle(last_activity=0.0, now=1800.0, idle_minutes=30)
    assert not ondemand.is_idle(last_activity=0.0, now=1799.0, idle_minutes=30)
    assert not ondemand.is_idle(last_activity=0.0, now=10**9, idle_minutes=0)  # 0 = never
    assert ondemand.is_idle(last_activity=100.0, now=103.0, idle_minutes=0.05)  # 3 s


def test_activity_resets_the_idle_clock() -> None:
    quiet = ondemand.Activity(served=5, busy=0)
    assert ondemand.last_activity_after(quiet, quiet, last=10.0, now=50.0) == 10.0
    assert ondemand.last_activity_after(quiet, ondemand.Activity(6, 0), 10.0, 50.0) == 50.0
    assert ondemand.last_activity_after(quiet, ondemand.Activity(5, 1), 10.0, 50.0) == 50.0
    assert ondemand.last_activity_after(quiet, None, 10.0, 50.0) == 50.0  # cannot say: busy
    assert ondemand.last_activity_after(None, quiet, 10.0, 50.0) == 50.0  # first look


def test_parse_activity_sums_vllm_counters_and_gauges() -> None:
    activity = ondemand.parse_activity(METRICS.format(running=2.0, done=3.0))
    assert activity == ondemand.Activity(served=3.0 + 1.0 + 40.0, busy=2.0)


def test_poll_interval_is_bounded() -> None:
    assert ondemand.poll_interval(30) == ondemand.MAX_POLL_S
    assert ondemand.poll_interval(0.01) == ondemand.MIN_POLL_S


def test_start_notice_says_what_why_how_long_and_how_to_stop() -> None:
    text = ondemand.start_notice("qwen", "127.0.0.1:8000", 30, 52.3, "/d/run/vllm-8000.log")
    for needle in ("Starting the local model server", "'qwen'", "127.0.0.1:8000",
                   "RAG_LLM_BASE_URL", "about 53 s", "30 min without requests",
                   "RAG_LLM_IDLE_MINUTES", "`rag llm stop`", "/d/run/vllm-8000.log"):  # fmt: skip
        assert needle in text, (needle, text)
    first = ondemand.start_notice("qwen", "h:1", 0, None, "log")
    assert "first start converts the model" in first and "until you stop it" in first


def test_idle_status_lines() -> None:
    line = ondemand.idle_status_line(ondemand.ON_DEMAND, 30, last_activity=0.0, now=120.0)
    assert line == "started on demand; idle timeout 30 min; idle for 2 min, stops in about 28 min"
    assert "no idle timeout" in ondemand.idle_status_line(ondemand.BY_HAND, 0, None, 0.0)
    assert "rag will not stop it" in ondemand.idle_status_line(None, 0, None, 0.0)


def test_idle_minutes_setting(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).llm_idle_minutes == 30
    assert Settings(data_dir=tmp_path, llm_idle_minutes=0.5).llm_idle_minutes == 0.5
    with pytest.raises(ValidationError, match="llm_idle_minutes"):
        Settings(data_dir=tmp_path, llm_idle_minutes=-1)


# --- serve, stop and the watcher with stand-ins --------------------------------------------


def test_on_demand_start_tells_the_user_first_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The notice comes before the slow part: here preparing a corrupt model fails right after."""
    bad = tmp_path / "tiny.gguf"
    bad.write_bytes(b"not a gguf file at all, but long enough to read a header")
    settings = Settings(data_dir=tmp_path / "data", llm_model=str(bad), llm_port=free_port())
    with pytest.raises(ModelError):
        server.serve(settings)
    err = capsys.readouterr().err
    assert "Starting the local model server" in err and "`rag llm stop`" in err
    seen: list[str] = []
    with pytest.raises(ModelError):
        server.serve(settings, by_hand=True, notify=seen.append)
    assert seen == []  # `rag llm serve` prints its own lines
    assert not server.pid_path(settings).exists()


def test_stop_ends_the_server_and_its_watcher(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_port=free_port())
    fake_server, watcher = sleeper("vllm-fake"), sleeper(runstate.WATCHER_MODULE)
    try:
        pid_file = record_server(settings, fake_server.pid, watcher_pid=watcher.pid)
        runstate.write_activity(pid_file, time.time())
        assert server.stop(settings) is True
        assert fake_server.wait(timeout=30) is not None and watcher.wait(timeout=30) is not None
        assert not pid_file.exists() and not runstate.activity_path(pid_file).exists()
    finally:
        for proc in (fake_server, watcher):
            proc.kill()
            proc.wait()


def test_watcher_stops_an_idle_server(tmp_path: Path, fake_vllm: FakeVllm) -> None:
    settings = Settings(data_dir=tmp_path, llm_port=fake_vllm.port)
    fake_server = sleeper("vllm-fake")
    try:
        pid_file = record_server(settings, fake_server.pid, started_by=ondemand.ON_DEMAND)
        metrics = f"http://127.0.0.1:{fake_vllm.port}/metrics"
        assert idle_watch.watch(pid_file, metrics, 0.01, fake_server.pid) is True
        assert fake_server.wait(timeout=30) is not None
        assert not pid_file.exists() and not runstate.activity_path(pid_file).exists()
    finally:
        fake_server.kill()
        fake_server.wait()


def test_watcher_leaves_when_the_server_is_gone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_port=free_port())
    gone = sleeper("vllm-fake")
    gone.kill()
    gone.wait()
    pid_file = record_server(settings, gone.pid)
    assert idle_watch.watch(pid_file, "http://127.0.0.1:9/metrics", 30, gone.pid) is False


def test_client_starts_a_stopped_local_server_again(tmp_path: Path) -> None:
    """After an idle stop the next request of a long-lived client restarts the server."""
    port = free_port()
    settings = Settings(data_dir=tmp_path, llm_port=port, llm_served_name="m",
                        llm_max_retries=0)  # fmt: skip
    started: list[FakeVllm] = []

    def restart() -> bool:
        started.append(serve_fake(port)[0])
        return True

    llm = chat_model(settings, base_url=f"http://127.0.0.1:{port}/v1")  # no serve() here
    assert isinstance(llm, ServedChatOpenAI)
    llm.restart_server = restart  # what chat_model sets for the local server
    assert llm.invoke("From which port?").content == "Velmora"
    assert len(started) == 1 and len(started[0].chats) == 1
    other = chat_model(settings, base_url=f"http://127.0.0.1:{free_port()}/v1")
    assert isinstance(other, ServedChatOpenAI)
    other.restart_server = lambda: False  # the server is up: the failure is another one
    with pytest.raises(LLMError, match="lost connection"):
        other.invoke("hi")


# --- `rag llm status` ------------------------------------------------------------------------


def run_rag(tmp_path: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return rag_cli(tmp_path, *args, cwd=tmp_path, RAG_LLM_PORT=str(port))


def test_llm_status_shows_who_started_it_and_when_it_stops(
    tmp_path: Path, fake_vllm: FakeVllm
) -> None:
    settings = Settings(data_dir=tmp_path, llm_port=fake_vllm.port)
    fake_server = sleeper("vllm-fake")
    try:
        pid_file = record_server(
            settings, fake_server.pid, started_by=ondemand.ON_DEMAND, idle_minutes=30.0
        )
        runstate.write_activity(pid_file, time.time() - 120)
        result = run_rag(tmp_path, fake_vllm.port, "llm", "status")
        assert result.returncode == 0, result.stderr
        assert f"pid {fake_server.pid}" in result.stdout
        assert "started on demand; idle timeout 30 min; idle for 2 min" in result.stdout
        assert "stops in about 28 min" in result.stdout
        doc = json.loads(run_rag(tmp_path, fake_vllm.port, "llm", "status", "--json").stdout)
        assert doc["started_by"] == "on demand" and doc["idle_minutes"] == 30.0
        assert doc["last_activity"] and "stops in about" in doc["idle"]
    finally:
        fake_server.kill()
        fake_server.wait()


def test_llm_serve_help_documents_the_idle_timeout(tmp_path: Path) -> None:
    result = run_rag(tmp_path, free_port(), "llm", "serve", "--help")
    assert "--idle-minutes" in result.stdout and "rag llm stop" in result.stdout
