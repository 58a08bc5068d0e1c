"""Two real vLLM servers behind a real `vllm-router`, rag_app pointed at the router.

rag_app answers through the router and requests reach both servers (their own /metrics say
so); SIGKILL of the server that is streaming a long answer ends that stream with one clear
LLMError line, requests the other server had accepted complete, and new requests are served by
the live one: through the router once its health probes mark the dead server, and, through a
second router that never probes after start-up, by the router's own retries.

"Still running when killed" is made certain, not timed: the long request ignores EOS and asks
for almost the whole context, the kill waits for its first tokens and for the server's own
`vllm:num_requests_running` gauge, and the test asserts the stream never reported a
finish_reason (a request that had finished would fail the test, never pass it by luck).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from langchain_core.messages import BaseMessageChunk
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_paths
from rag_app.errors import LLMError
from rag_app.pipeline import ask
from rag_app.records import Answer
from rag_app.serving import processes, server
from rag_app.serving.llm import chat_model
from rag_app.settings import Settings
from tests.conftest import (
    LLM_TEST_TIMEOUT_S,
    SAMPLES_DIR,
    WAIT_S,
    server_settings,
    session_data_dir,
    until,
)
from tests.integration.test_answer_samples import QUESTIONS, accepted
from tests.integration.test_llm_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LOAD_REQUESTS = 4  # short answers in flight on both servers when one is killed

# Router flags (defaults in brackets) chosen so that a dead server stops getting requests fast:
ROUTER_FLAGS = [
    "--policy", "round_robin",  # [cache_aware] spread evenly; the test checks both get work
    # [60 s] a SIGKILLed vLLM refuses connections at once, so a 1 s probe of /health notices it
    # within ~2 s; the probe is cheap for vLLM even while it generates
    "--health-check-interval-secs", "1",
    "--health-failure-threshold", "2",  # [3] two refused probes in a row: dead, not a blip
    # [5 s] a busy CPU server may answer /health slowly; only a hung one waits this long, a
    # dead one is refused immediately
    "--health-check-timeout-secs", "10",
    "--worker-startup-check-interval", "1",  # [30 s] start serving as soon as workers are up
    # [10] open a server's circuit after 3 failed requests, before health checks catch up
    "--cb-failure-threshold", "3",
    # [5 retries, 50 ms backoff] kept: a request sent to a just-dead server is retried on
    # the live one (a stream that already started cannot be retried, and is cut)
    "--retry-max-retries", "5",
]  # fmt: skip


@dataclass
class Worker:
    settings: Settings

    @property
    def url(self) -> str:  # as the router names it (no /v1)
        return f"http://{self.settings.llm_host}:{self.settings.llm_port}"


@dataclass
class Router:
    proc: subprocess.Popen[bytes]
    url: str  # …/v1, what RAG_LLM_BASE_URL is set to
    metrics: str  # the router's own Prometheus endpoint
    log: Path


@dataclass
class Fleet:
    workers: list[Worker]
    router: Router  # the documented flags
    unprobed: Router  # the same, but no health probe after start-up: only retries re-route

    @property
    def router_url(self) -> str:
        return self.router.url


def router_binary() -> str | None:
    """The console script next to this interpreter (the venv), else one on PATH."""
    local = Path(sys.executable).parent / "vllm-router"
    return str(local) if local.exists() else shutil.which("vllm-router")


def samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` at a Prometheus `url`."""
    text = httpx.get(url, timeout=30).text
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def worker_metric(worker: Worker, name: str) -> float:
    return sum(value for _, value in samples(f"{worker.url}/metrics", name))


def succeeded(worker: Worker) -> float:
    """Requests the server finished normally (vLLM counts aborts and errors apart)."""
    return sum(
        value
        for labels, value in samples(f"{worker.url}/metrics", "vllm:request_success_total")
        if labels.get("finished_reason") in ("stop", "length")
    )


def router_sees_healthy(router: Router, worker: Worker) -> bool:
    health = samples(router.metrics, "vllm_router_worker_health")
    return any(labels.get("worker") == worker.url and v == 1 for labels, v in health)


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_router(workers: list[Worker], log: Path, *flags: str) -> Router:
    binary = router_binary()
    assert binary is not None
    port, metrics_port = free_port(), free_port()
    command = [binary, "--worker-urls", *(w.url for w in workers), *ROUTER_FLAGS, *flags]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics_port)]
    with log.open("ab") as out:  # its own session: teardown kills the whole group
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    router = Router(proc, f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{metrics_port}/metrics",
                    log)  # fmt: skip

    def ready() -> bool:  # the router answers once it has seen its workers healthy
        assert proc.poll() is None, f"vllm-router exited:\n{log_tail(log)}"
        return server.served_models(router.url) is not None

    until(ready, f"vllm-router on port {port}")
    return router


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
            return


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two vLLM servers (the test preset, free ports, started at once) and two routers in front."""
    if router_binary() is None:
        pytest.skip("vllm-router is not installed: pip install -e '.[router]'")
    data_dir = session_data_dir(tmp_path_factory)  # the prepared model is reused
    workers = [  # no idle watcher: the test stops them
        Worker(server_settings(data_dir, free_port()).model_copy(update={"llm_idle_minutes": 0}))
        for _ in range(2)
    ]
    logs = tmp_path_factory.mktemp("router")
    routers: list[Router] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # both load their models at the same time
            list(pool.map(lambda w: server.serve(w.settings), workers))
        routers.append(start_router(workers, logs / "router.log"))
        # later flags win: one probe at start-up, then none for an hour
        routers.append(start_router(workers, logs / "unprobed.log",
                                    "--health-check-interval-secs", "3600"))  # fmt: skip
        yield Fleet(workers, routers[0], routers[1])
    finally:
        for router in routers:
            stop_group(router.proc)
        for worker in workers:
            server.stop(worker.settings)


@pytest.fixture(scope="module")
def settings(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("router-data"),
        llm_base_url=fleet.router_url,
        llm_request_timeout=float(LLM_TEST_TIMEOUT_S),
        llm_max_retries=0,  # the router's retries are under test, not the client's
        llm_max_inflight=LOAD_REQUESTS + 2,  # all of the kill test's requests at once
    )


@pytest.fixture(scope="module")
def kb(settings: Settings) -> KnowledgeBase:
    base = open_kb("samples", settings=settings, create=True)
    summary = ingest_paths([SAMPLES_DIR], base)  # the real embedder
    assert summary.added >= 5, summary
    return base


def test_rag_app_answers_through_the_router_on_both_servers(
    fleet: Fleet, settings: Settings, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [succeeded(w) for w in fleet.workers]
    answer = ask(QUESTIONS["lighthouse_steps"]["question"], kb, settings=settings)
    assert not answer.abstained and accepted(answer, "lighthouse_steps"), answer.text
    assert answer.citations and answer.usage.completion_tokens > 0
    # the same through the CLI, configured as a user would: RAG_LLM_BASE_URL = the router
    from rag_app.cli import app
    from rag_app.settings import get_settings

    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RAG_LLM_BASE_URL", fleet.router_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["ask", QUESTIONS["kestrel_length"]["question"], "--kb", kb.name, "--json"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    cli_answer = Answer.model_validate(json.loads(result.output))
    assert cli_answer.hits and cli_answer.usage.completion_tokens > 0
    assert cli_answer.abstained or cli_answer.citations, cli_answer.text
    # round robin: consecutive requests alternate, so each server answered at least one
    after = [succeeded(w) for w in fleet.workers]
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)


@dataclass
class Stream:
    """One streamed completion, read by a thread: what arrived and how it ended."""

    chunks: list[BaseMessageChunk] = field(default_factory=list)
    first: threading.Event = field(default_factory=threading.Event)  # a token, or the end
    finish_reason: str | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None

    @property
    def text(self) -> str:
        return "".join(str(c.content) for c in self.chunks)


def start_stream(llm: Any, prompt: str) -> Stream:
    stream = Stream()

    def read() -> None:
        try:
            for chunk in llm.stream(prompt):
                stream.chunks.append(chunk)
                stream.finish_reason = chunk.response_metadata.get("finish_reason") or (
                    stream.finish_reason
                )
                if chunk.content:
                    stream.first.set()
        except BaseException as exc:  # noqa: BLE001 - the outcome under test
            stream.error = exc
        finally:
            stream.first.set()

    stream.thread = threading.Thread(target=read, daemon=True)
    stream.thread.start()
    return stream


def ended(stream: Stream) -> bool:
    assert stream.thread is not None
    stream.thread.join(timeout=WAIT_S)
    return not stream.thread.is_alive()


def kill_hard(worker: Worker) -> None:
    """SIGKILL the server's whole process group (and children that left it), as a crash would."""
    pid = server.status(worker.settings).pid
    assert pid, f"{worker.url} is not running"
    family = processes.server_family(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # serve() started it as its own group's leader
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    server.stop(worker.settings)  # clears the pid file


def assert_one_clear_line(error: BaseException | None, fleet: Fleet) -> None:
    assert isinstance(error, LLMError), repr(error)
    message = str(error)
    assert "\n" not in message and fleet.router_url in message, message


def test_killed_server_cuts_its_stream_and_the_live_one_takes_new_requests(
    fleet: Fleet, settings: Settings, kb: KnowledgeBase
) -> None:
    # a long answer: EOS ignored, almost the whole context; it cannot end before the kill
    max_tokens = settings.llm_max_model_len - 256
    long_llm = chat_model(settings, max_tokens=max_tokens, extra_body={"ignore_eos": True})
    long = start_stream(long_llm, "Tell a very long story about the sea.")
    assert long.first.wait(WAIT_S) and long.error is None, long.error
    assert long.text and long.finish_reason is None, "the long answer ended before the kill"
    # the only request in flight: the server whose gauge shows it running is serving it
    victim = until(
        lambda: next((w for w in fleet.workers if worker_metric(w, "vllm:num_requests_running")),
                     None),
        "the long request to show as running on a server",
    )  # fmt: skip
    live = next(w for w in fleet.workers if w is not victim)
    # load: short answers accepted by both servers (round robin) and generating
    short_llm = chat_model(settings, max_tokens=96, extra_body={"ignore_eos": True})
    load = [start_stream(short_llm, f"Count from {i} upwards.") for i in range(LOAD_REQUESTS)]
    for stream in load:
        assert stream.first.wait(WAIT_S), "a short request never started"
    running_on_live = worker_metric(live, "vllm:num_requests_running")
    live_before = succeeded(live)

    kill_hard(victim)

    # the cut stream ends (no hang) with one clear error line, and never as an answer
    assert ended(long), "the long stream hung after its server was killed"
    assert long.finish_reason is None, f"the long request finished first: {long.finish_reason}"
    assert_one_clear_line(long.error, fleet)
    assert len(long.chunks) < max_tokens
    # requests already accepted: each completes or fails with one clear line; those the live
    # server was running complete
    for stream in load:
        assert ended(stream), "a short request hung after a server was killed"
        if stream.error is None:
            assert stream.finish_reason == "length" and stream.text, stream.finish_reason
        else:
            assert_one_clear_line(stream.error, fleet)
    completed = sum(stream.error is None for stream in load)
    assert completed >= running_on_live, (completed, running_on_live, [s.error for s in load])

    # new requests: the router stops sending to the dead server and the live one answers them
    quick = chat_model(settings, max_tokens=8)

    def answered() -> bool:
        try:
            return bool(quick.invoke("Say hello.").content)
        except LLMError:  # only until the router has re-routed; then every request succeeds
            return False

    until(answered, "a request through the router to succeed after the kill")
    until(lambda: not router_sees_healthy(fleet.router, victim), "the router to mark it dead")
    assert router_sees_healthy(fleet.router, live)
    for question in ("kestrel_length", "lighthouse_steps"):
        answer = ask(QUESTIONS[question]["question"], kb, settings=settings)
        assert answer.usage.completion_tokens > 0 and (answer.abstained or answer.citations)
    replies = [quick.invoke(f"Say hello {i}.") for i in range(3)]
    assert all(reply.content for reply in replies)
    # the live server finished every one of them (the poll's success, each ask's LLM call(s))
    assert succeeded(live) - live_before >= 1 + 2 + len(replies)
    # a router that has not probed since the kill still thinks the dead server is healthy and
    # sends it every other request: its retries re-route each of them to the live server
    assert router_sees_healthy(fleet.unprobed, victim)
    # the model's name is given (RAG_LLM_SERVED_NAME, as the README advises behind a router):
    # this router forwards GET /models to one server, and it may be the dead one
    name = server.served_models(f"{live.url}/v1")
    assert name, "the live server lists no model"
    named = settings.model_copy(update={"llm_served_name": name[0]})
    blind = chat_model(named, base_url=fleet.unprobed.url, max_tokens=8)
    assert all(blind.invoke(f"Say hi {i}.").content for i in range(4))
    retries = samples(fleet.unprobed.metrics, "vllm_router_retries_total")
    assert sum(value for _, value in retries) >= 1, retries
    assert succeeded(live) - live_before >= 1 + 2 + len(replies) + 4
    for router in (fleet.router, fleet.unprobed):
        assert router.proc.poll() is None, f"a router exited:\n{log_tail(router.log)}"
