"""Fault: the vLLM server is killed while `rag serve` streams answers to several clients.

Every client must get a well-formed OpenAI error event (then `data: [DONE]`), the API must keep
serving (503 while the model server is down) and recover by itself once it is back. This test
starts its own vLLM server on a free port: killing the session's shared one would break others.

No stream may finish before the kill, on any host: a short answer from a fast CPU once did. So
the test's vLLM runs one sequence at a time (`--max-num-seqs 1`) and the test first fills that
slot with a long request of its own (`ignore_eos`, thousands of tokens); the answers' requests
then queue inside vLLM with their streams open, and the kill cuts them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.kb import open_kb
from ingest.pipeline import ingest_paths
from rag_app.serving import processes, server
from rag_app.settings import Settings
from tests.conftest import SAMPLES_DIR, server_settings, session_data_dir
from tests.integration.test_api_serve import free_port, start_serve, stop_and_check

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLIENTS = 4
QUESTION = "Describe the Harrow Point Lighthouse in detail: its history, builder and keepers."
BLOCKER_TOKENS = 3000  # minutes of decoding on these CPUs; the kill follows within seconds


def stream_answer(url: str, opened: threading.Event, out: dict[str, Any]) -> None:
    """Stream one answer through `rag serve`; `opened` once its first event arrives."""
    body = {"model": "rag:default", "stream": True,
            "messages": [{"role": "user", "content": QUESTION}]}  # fmt: skip
    events: list[Any] = []
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as reply:
            out["status"] = reply.status_code
            for line in reply.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                events.append(data if data == "[DONE]" else json.loads(data))
                opened.set()
    except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
        out["exception"] = repr(exc)
    finally:
        opened.set()
        out["events"] = events


def hold_the_slot(llm_url: str, writing: threading.Event, out: dict[str, Any]) -> None:
    """A long completion straight to vLLM: it holds the only sequence slot until the kill."""
    model = httpx.get(f"{llm_url}/models", timeout=30).json()["data"][0]["id"]
    body = {"model": model, "prompt": "Once upon a time", "stream": True,
            "max_tokens": BLOCKER_TOKENS, "ignore_eos": True}  # fmt: skip
    out["finish_reason"] = None
    try:
        with httpx.stream("POST", f"{llm_url}/completions", json=body, timeout=600) as reply:
            for line in reply.iter_lines():
                if not line.startswith("data: {"):
                    continue
                choice = json.loads(line[len("data: ") :])["choices"][0]
                writing.set()
                out["finish_reason"] = choice.get("finish_reason") or out["finish_reason"]
    except httpx.HTTPError as exc:
        out["exception"] = repr(exc)  # the expected end: the server died under it
    finally:
        writing.set()


def queued_in_vllm(llm_url: str) -> float:
    """vLLM's `num_requests_waiting` gauge: requests accepted but not yet scheduled."""
    metrics = httpx.get(llm_url.removesuffix("/v1") + "/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "vllm:num_requests_waiting"
        for sample in family.samples
    )


def kill_hard(settings: Settings) -> None:
    """SIGKILL the whole vLLM process family, as an OOM killer or a crash would."""
    status = server.status(settings)
    assert status.pid, "the test's vLLM server is not running"
    family = processes.server_family(status.pid)
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    server.stop(settings)  # clears the pid file


def test_model_server_killed_mid_stream(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    vllm = server_settings(session_data_dir(tmp_path_factory), free_port())
    vllm = vllm.model_copy(update={"llm_extra_args": ["--max-num-seqs", "1"]})
    llm_url = server.serve(vllm).base_url
    api = None
    try:
        base = open_kb("default", settings=Settings(data_dir=tmp_path), create=True)
        ingest_paths([SAMPLES_DIR], base)
        base.close()
        api, url = start_serve(tmp_path, llm_url, RAG_CONSTRAIN_ANSWERS="false",
                               RAG_LLM_MAX_TOKENS="256", RAG_LLM_MAX_RETRIES="0")  # fmt: skip
        writing, blocker = threading.Event(), dict[str, Any]()
        holder = threading.Thread(target=hold_the_slot, args=(llm_url, writing, blocker))
        holder.start()
        assert writing.wait(timeout=600) and "exception" not in blocker, blocker
        opened = [threading.Event() for _ in range(CLIENTS)]
        results: list[dict[str, Any]] = [{} for _ in range(CLIENTS)]
        threads = [
            threading.Thread(target=stream_answer, args=(url, opened[i], results[i]))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        # every stream is open, and answers' requests wait inside vLLM behind the long one (the
        # rest wait in rag serve's in-flight limiter and will meet a dead server)
        for event in opened:
            assert event.wait(timeout=600), "a stream never opened"
        deadline = time.monotonic() + 600
        while queued_in_vllm(llm_url) < 1:
            assert time.monotonic() < deadline, "no answer request reached vLLM"
            time.sleep(0.2)
        kill_hard(vllm)
        holder.join(timeout=60)
        assert blocker["finish_reason"] is None, f"the long request finished first: {blocker}"
        for thread in threads:
            thread.join(timeout=300)
        for result in results:
            assert result.get("status") == 200 and "exception" not in result, result
            events = result["events"]
            assert events[-1] == "[DONE]", events[-3:]
            assert isinstance(events[-2], dict) and "error" in events[-2], events[-3:]
            error = events[-2]["error"]
            assert error["code"] == "llm_unavailable" and error["message"], error
            assert error["type"] == "service_unavailable"
        # still serving while the model server is down: a clear 503, not a hang or a crash
        down = httpx.post(f"{url}/v1/answers", json={"kb": "default", "question": QUESTION},
                          timeout=300)  # fmt: skip
        assert down.status_code == 503 and down.json()["error"]["code"] == "llm_unavailable"
        # ... and recovers by itself once it is back
        server.serve(vllm)
        body = {"kb": "default", "question": "How long is the Kestrel Bridge?"}
        back = httpx.post(f"{url}/v1/answers", json=body, timeout=300)
        assert back.status_code == 200, back.text
        assert back.json()["hits"] and back.json()["timings"]["total_s"] > 0
        stop_and_check(api, signal.SIGTERM)
        api = None
    finally:
        if api is not None:
            api.kill()
        server.stop(vllm)
        assert not os.path.exists(server.pid_path(vllm))
