"""Server control logic without starting vLLM: command line, environment, pid files, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_app.serving import launch, server
from rag_app.serving.cpu import KVCACHE_GIB, cpu_server_env, usable_cores
from rag_app.settings import Settings
from tests.conftest import free_port


def test_command_line_has_model_name_port_and_extra_args(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        llm_port=8799,
        llm_max_model_len=2048,
        llm_extra_args=["--tensor-parallel-size", "2"],
    )
    command = launch.server_command(settings, tmp_path / "model", "served")
    assert command[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(command)
    assert f"--model {tmp_path / 'model'}" in joined
    assert "--served-model-name served" in joined
    assert "--port 8799" in joined and "--max-model-len 2048" in joined
    assert command[-2:] == ["--tensor-parallel-size", "2"]  # user arguments come last and win
    assert ("--enforce-eager" in command) == launch.cpu_only()


def test_environment_keeps_user_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "7")
    env = launch.server_env()
    assert env["HF_HUB_OFFLINE"] == "1"
    if launch.cpu_only():
        assert env["VLLM_CPU_KVCACHE_SPACE"] == "7"
        monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE")
        assert launch.server_env()["VLLM_CPU_KVCACHE_SPACE"] == KVCACHE_GIB
        monkeypatch.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "1")
        assert launch.server_env()["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "1"


def test_small_machines_run_the_model_on_every_core() -> None:
    assert cpu_server_env(2) == {"VLLM_CPU_KVCACHE_SPACE": KVCACHE_GIB,
                                 "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}  # fmt: skip
    assert cpu_server_env(1)["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in cpu_server_env(8)  # vLLM's own default there
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_status_of_a_free_port_is_not_running(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_port=free_port())
    status = server.status(settings)
    assert not status.healthy and not status.managed and status.pid is None
    assert status.base_url == f"http://127.0.0.1:{settings.llm_port}/v1"
    assert server.stop(settings) is False


def test_stale_pid_file_is_ignored_and_removed(tmp_path: Path) -> None:
    """A pid file whose process died (or whose pid was reused) must never kill anything."""
    settings = Settings(data_dir=tmp_path, llm_port=free_port())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        settings.run_dir.mkdir(parents=True)
        server.pid_path(settings).write_text(json.dumps({"pid": sleeper.pid, "served_name": "x"}))
        assert not server.status(settings).managed  # alive, but not a vLLM process
        assert server.stop(settings) is False
        assert sleeper.poll() is None  # untouched
        assert not server.pid_path(settings).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_log_tail_reads_the_last_lines(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_port=free_port())
    settings.run_dir.mkdir(parents=True)
    server.log_path(settings).write_text("\n".join(f"line {i}" for i in range(100)))
    assert server.log_tail(settings, lines=3) == "line 97\nline 98\nline 99"
