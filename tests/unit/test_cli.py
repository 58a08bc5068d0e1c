"""The `rag` CLI: help lists every command with a purpose; bad input is one line and exit != 0."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from rag_app.cli import app
from tests.conftest import free_port, rag_cli


def run_rag(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a clean environment with a private data dir."""
    return rag_cli(tmp_path / "data", *args, cwd=tmp_path, **env)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_help_lists_every_command_with_a_purpose(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "--help")
    assert result.returncode == 0
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert {"config", "model", "llm", "doctor"} <= set(commands)
    for name, command in commands.items():
        assert name in result.stdout
        assert command.get_short_help_str().strip(), f"`rag {name}` has no help text"


def test_subcommand_help_explains_options(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "model", "prepare", "--help")
    assert result.returncode == 0
    assert "--model" in result.stdout and "gguf" in result.stdout


def test_unknown_command_is_one_line(tmp_path: Path) -> None:
    assert_one_error_line(run_rag(tmp_path, "no-such-command"), "no-such-command")


def test_unknown_option_is_one_line(tmp_path: Path) -> None:
    assert_one_error_line(run_rag(tmp_path, "llm", "serve", "--bogus"), "--bogus")


def test_nonexistent_model_path_is_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing" / "model.gguf")
    assert_one_error_line(run_rag(tmp_path, "model", "prepare", "--model", missing), missing)


def test_corrupt_gguf_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"definitely not a gguf file")
    result = run_rag(tmp_path, "model", "prepare", "--model", str(bogus))
    assert_one_error_line(result, str(bogus), "not a GGUF file")


def test_bad_setting_value_is_reported(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "config", "show", RAG_LLM_PORT="not-a-port")
    assert result.returncode != 0
    assert "llm_port" in result.stderr


def test_config_show_json_reports_values_and_sources(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "config", "show", "--json", RAG_TOP_K="9")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["top_k"] == {"value": 9, "source": "env RAG_TOP_K"}
    assert doc["data_dir"]["source"] == "env RAG_DATA_DIR"
    assert doc["fetch_k"]["source"] == "default"
    assert doc["llm_api_key"]["value"] == "***"


def test_llm_status_without_server_exits_non_zero(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "llm", "status", "--json", RAG_LLM_PORT=str(free_port()))
    assert result.returncode == 1
    assert json.loads(result.stdout)["healthy"] is False


def test_llm_stop_without_server_says_so(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "llm", "stop", RAG_LLM_PORT=str(free_port()))
    assert result.returncode == 0
    assert "no server" in result.stdout


@pytest.mark.slow
def test_doctor_reports_a_server_that_starts_on_demand_as_information(tmp_path: Path) -> None:
    port = free_port()
    result = run_rag(tmp_path, "doctor", RAG_LLM_PORT=str(port))
    assert result.returncode == 0, result.stdout  # nothing here stops the user
    lines = result.stdout.splitlines()
    assert any(line.startswith("[ok  ] python") for line in lines), result.stdout
    assert any(line.startswith("[ok  ] torch") for line in lines), result.stdout
    server = next(line for line in lines if "llm server" in line)
    assert server.startswith("[info]") and f":{port}/v1" in server and "on demand" in server
    model = next(line for line in lines if "] model" in line)
    assert model.startswith("[info]") and "rag model prepare" in model
    dtype = next(line for line in lines if "] llm dtype" in line)
    assert " cores, " in dtype and ("bfloat16" in dtype or "float32" in dtype), dtype
    gpu = next(line for line in lines if "] gpu" in line)
    if shutil.which("nvidia-smi") is None:  # this machine kind: the model runs on the CPU
        assert gpu.startswith("[ok  ] gpu: none") and "nvidia-smi" in gpu, gpu
    else:
        assert "NVIDIA GPU" in gpu or "reports no GPU" in gpu, gpu


@pytest.mark.slow
def test_doctor_fails_for_an_unreachable_configured_endpoint(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = run_rag(tmp_path, "doctor", RAG_LLM_BASE_URL=url)
    assert result.returncode == 1
    server = next(line for line in result.stdout.splitlines() if "llm server" in line)
    assert server.startswith("[FAIL]") and url in server and "RAG_LLM_BASE_URL" in server


@pytest.mark.parametrize("question", ["", "   ", "\t\n"])
def test_empty_question_is_one_error_line_before_any_work(tmp_path: Path, question: str) -> None:
    result = run_rag(tmp_path, "ask", question, RAG_LLM_BASE_URL="http://127.0.0.1:9/v1")
    assert_one_error_line(result, "question is empty")
    assert result.stdout == ""
    assert not (tmp_path / "data" / "kb").exists()  # no knowledge base was opened or created


def test_missing_ingest_path_is_one_error_line_before_any_work(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "such" / "file.txt")
    result = run_rag(tmp_path, "ingest", missing)
    assert_one_error_line(result, missing, "no such file or folder")
    assert result.stdout == ""  # no progress bars, no summary table
    assert not (tmp_path / "data" / "kb").exists()


def test_bad_mode_is_one_error_line(tmp_path: Path) -> None:
    result = run_rag(tmp_path, "ask", "Who built it?", "--mode", "poetry")
    assert_one_error_line(result, "poetry")
