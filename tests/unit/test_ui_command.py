"""`rag ui`: help text, the streamlit command line, a clear error for an unreachable model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rag_app.cli import app
from rag_app.commands.ui import APP_SCRIPT, streamlit_command


def test_help_explains_options() -> None:
    result = CliRunner().invoke(app, ["ui", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--kb", "--host"):
        assert option in result.output


def test_streamlit_command_runs_the_app_headless_with_upload_limit() -> None:
    command = streamlit_command(8612, "127.0.0.1", max_upload_mb=20.5)
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(command[4]) == APP_SCRIPT and APP_SCRIPT.is_file()
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags["--server.port"] == "8612"
    assert flags["--server.headless"] == "true"
    assert flags["--server.maxUploadSize"] == "21"
    assert flags["--browser.gatherUsageStats"] == "false"


def test_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {"RAG_DATA_DIR": str(tmp_path), "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    result = subprocess.run(
        [sys.executable, "-m", "rag_app.cli", "ui", "--port", "8613"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach RAG_LLM_BASE_URL=http://127.0.0.1:9/v1")
