"""`rag serve` as a real subprocess, with the real vLLM server and MiniLM: stock clients we did
not write (openai, LangChain's ChatOpenAI, curl from the README) get verified citations; the
server shuts down cleanly on SIGTERM and Ctrl-C with no orphans.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from ingest.kb import open_kb
from ingest.pipeline import ingest_paths
from rag_app.api.keys import KeyStore
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, SAMPLES_DIR, free_port

pytestmark = pytest.mark.integration
QUESTION = "How many steps lead up to the lantern room of the Harrow Point Lighthouse?"
EXPECTED = "214"
READY_TIMEOUT_S = 300.0  # loading torch and MiniLM on a busy 2-core machine


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    key: str
    proc: subprocess.Popen[str]
    data_dir: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def start_serve(
    data_dir: Path, llm_url: str, **env_extra: str
) -> tuple[subprocess.Popen[str], str]:
    """Start `rag serve` on a free port; return the process and its URL once /healthz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(data_dir), "RAG_LLM_BASE_URL": llm_url,
                "RAG_LLM_REQUEST_TIMEOUT": "120", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", **env_extra})  # fmt: skip
    log = open(data_dir / f"serve-{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_app.cli", "serve", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"rag serve exited: {(data_dir / f'serve-{port}.log').read_text()}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("rag serve did not become ready")


def stop_and_check(proc: subprocess.Popen[str], sig: int) -> None:
    """Send `sig`; the server must exit 0 and leave no child process behind."""
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 0
    alive = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"orphans left: {alive}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, vllm_server: str) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("api-serve")
    settings = Settings(data_dir=data_dir)
    base = open_kb("default", settings=settings, create=True)
    assert ingest_paths([SAMPLES_DIR], base).added >= 5
    base.close()
    _, key = KeyStore.open(settings).create("tests", "editor", ["default"])
    proc, url = start_serve(data_dir, vllm_server)
    yield Served(url, key, proc, data_dir)
    if proc.poll() is None:
        proc.kill()


def assert_cited(rag: dict, source: str = "harrow_point_lighthouse.md") -> None:  # type: ignore[type-arg]
    assert rag["kind"] in ("confident", "tentative"), rag
    assert any(Path(c["source"]).name == source for c in rag["citations"]), rag["citations"]
    chunk_texts = [h["chunk"]["text"] for h in rag["hits"]]
    assert all(any(c["quote"] in t for t in chunk_texts) for c in rag["citations"])


def test_openai_client_gets_citations(served: Served) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{served.url}/v1", api_key=served.key, timeout=300)
    models = [m.id for m in client.models.list()]
    assert "rag:default" in models and "rag:default:cited" in models
    reply = client.chat.completions.create(
        model="rag:default", messages=[{"role": "user", "content": QUESTION}]
    )
    message = reply.choices[0].message
    rag = message.model_extra["rag"]  # type: ignore[index]
    assert_cited(rag)
    assert message.content == rag["display_text"] and EXPECTED in message.content


def test_openai_client_streams_with_citations_on_the_last_chunk(served: Served) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{served.url}/v1", api_key=served.key, timeout=300)
    content, drafts, rag = "", "", None
    stream = client.chat.completions.create(
        model="rag:default", stream=True, messages=[{"role": "user", "content": QUESTION}],
        stream_options={"include_usage": True},
    )  # fmt: skip
    for chunk in stream:
        if not chunk.choices:
            assert chunk.usage and chunk.usage.completion_tokens > 0
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        drafts += (delta.model_extra or {}).get("rag_draft", "")
        if chunk.choices[0].finish_reason:
            rag = (delta.model_extra or {})["rag"]
    assert drafts, "no draft tokens were streamed"
    assert rag is not None and content == rag["display_text"]
    assert_cited(rag)


def test_langchain_chat_openai_gets_the_answer_and_its_record(served: Served) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{served.url}/v1", api_key=served.key, model="rag:default",  # type: ignore[arg-type]
                     timeout=300)  # fmt: skip
    message = llm.invoke(QUESTION)
    assert EXPECTED in str(message.content)
    record = httpx.get(f"{served.url}/v1/answers/{message.response_metadata['id']}",
                       headers=served.headers, timeout=30).json()  # fmt: skip
    assert_cited(record)
    assert "".join(str(c.content) for c in llm.stream(QUESTION)).strip() == message.content


def readme_curl_blocks() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [b for b in blocks if b.lstrip().startswith(("curl", "JOB=", "printf"))]


def test_readme_curl_examples_run(served: Served) -> None:
    blocks = readme_curl_blocks()
    assert len(blocks) >= 6
    env = {**os.environ, "RAG_API": served.url, "RAG_KEY": served.key}
    for block in blocks:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO_ROOT,
                                env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        assert result.stdout.strip(), block
        assert '"error"' not in result.stdout, result.stdout


def test_readme_python_example_runs(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(code.replace("http://127.0.0.1:8300", served.url), {"RAG_KEY": served.key})  # noqa: S102
    printed = capsys.readouterr().out
    assert "harrow_point_lighthouse.md" in printed and "kestrel_bridge.txt" in printed


def test_bad_requests_are_answered_and_the_server_keeps_serving(served: Served) -> None:
    chat = f"{served.url}/v1/chat/completions"
    bad = httpx.post(chat, content=b'{"model": ', headers={**served.headers,
                     "Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["error"]["message"]
    assert httpx.get(f"{served.url}/v1/kbs", timeout=30).status_code == 401
    # a client that drops a stream halfway
    body = {
        "model": "rag:default",
        "stream": True,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    with httpx.stream("POST", chat, json=body, headers=served.headers, timeout=300) as response:
        next(response.iter_lines())
    ok = httpx.post(chat, json={**body, "stream": False}, headers=served.headers, timeout=300)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["rag"]["citations"]


def test_refuses_to_listen_beyond_loopback_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "rag_app.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "refusing to listen on 0.0.0.0" in result.stderr


def test_ctrl_c_with_the_model_server_unreachable_stops_cleanly(tmp_path: Path) -> None:
    proc, url = start_serve(tmp_path, "http://127.0.0.1:9/v1")  # nothing listens on port 9
    reply = httpx.post(f"{url}/v1/answers", json={"kb": "nope", "question": "q"}, timeout=30)
    assert reply.status_code == 404
    stop_and_check(proc, signal.SIGINT)


def test_sigterm_stops_cleanly_with_no_orphans(served: Served) -> None:
    stop_and_check(served.proc, signal.SIGTERM)
