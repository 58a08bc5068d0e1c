"""Fault: the vLLM server is killed while `rag serve` streams answers to several clients.

Every client must get a well-formed OpenAI error event (then `data: [DONE]`), the API must keep
serving (503 while the model server is down) and recover by itself once it is back. This test
starts its own vLLM server on a free port: killing the session's shared one would break others.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from ingest.kb import open_kb
from ingest.pipeline import ingest_paths
from rag_app.serving import server
from rag_app.settings import Settings
from tests.conftest import SAMPLES_DIR, server_settings, session_data_dir
from tests.integration.test_api_serve import free_port, start_serve, stop_and_check

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLIENTS = 4
# unconstrained answers to an open question: each takes seconds to write, and the kill follows
# the earliest draft token by milliseconds, so no stream can have finished before it
QUESTION = "Describe the Harrow Point Lighthouse in detail: its history, builder and keepers."


def stream_answer(url: str, opened: threading.Event, drafting: threading.Event,
                  out: dict[str, Any]) -> None:  # fmt: skip
    """Stream one answer; `opened` when the stream starts, `drafting` at its first draft token."""
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
                choices = events[-1].get("choices") if isinstance(events[-1], dict) else None
                if choices and choices[0]["delta"].get("rag_draft"):
                    drafting.set()
    except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
        out["exception"] = repr(exc)
    finally:
        opened.set()
        out["events"] = events


def kill_hard(settings: Settings) -> None:
    """SIGKILL the whole vLLM process family, as an OOM killer or a crash would."""
    status = server.status(settings)
    assert status.pid, "the test's vLLM server is not running"
    family = server.server_family(status.pid)
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    server.stop(settings)  # clears the pid file


def test_model_server_killed_mid_stream(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    vllm = server_settings(session_data_dir(tmp_path_factory), free_port())
    llm_url = server.serve(vllm).base_url
    api = None
    try:
        base = open_kb("default", settings=Settings(data_dir=tmp_path), create=True)
        ingest_paths([SAMPLES_DIR], base)
        base.close()
        api, url = start_serve(tmp_path, llm_url, RAG_CONSTRAIN_ANSWERS="false",
                               RAG_LLM_MAX_TOKENS="256", RAG_LLM_MAX_RETRIES="0")  # fmt: skip
        opened = [threading.Event() for _ in range(CLIENTS)]
        drafting = threading.Event()
        results: list[dict[str, Any]] = [{} for _ in range(CLIENTS)]
        threads = [
            threading.Thread(target=stream_answer, args=(url, opened[i], drafting, results[i]))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        # every stream is open, and the model is writing (at least the earliest one's draft)
        for event in opened:
            assert event.wait(timeout=600), "a stream never opened"
        assert drafting.wait(timeout=600), "the model never started writing"
        kill_hard(vllm)
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
