"""CLI commands (ui); heavy imports stay inside the command functions so `rag --help` is fast."""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

import typer

from rag_app.commands.children import run_child

APP_SCRIPT = Path(__file__).resolve().parent.parent / "ui" / "app.py"


def streamlit_command(port: int, host: str, max_upload_mb: float) -> list[str]:
    """The `streamlit run` command line for the UI (same Python, headless, no telemetry)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        # Streamlit refuses bigger files in the browser; the app re-checks the exact limit.
        "--server.maxUploadSize",
        str(max(1, math.ceil(max_upload_mb))),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""

    @app.command("ui")
    def ui(
        port: int | None = typer.Option(
            None, "--port", help="Port for the web UI (default: setting ui_port, 8501)."
        ),
        kb: str | None = typer.Option(
            None, "--kb", help="Knowledge base selected at start (default: setting kb)."
        ),
        host: str = typer.Option(
            "127.0.0.1",
            "--host",
            help="Address to listen on; 0.0.0.0 makes the UI reachable from other machines.",
        ),
    ) -> None:
        """Open the browser UI: chat with your documents, see sources, upload files.

        Makes sure the LLM endpoint answers first (starting the local vLLM server if no
        RAG_LLM_BASE_URL is set), then runs Streamlit until you press Ctrl-C.
        """
        from rag_app.serving.llm import ensure_llm_endpoint
        from rag_app.settings import get_settings

        settings = get_settings()
        if kb:
            settings = settings.model_copy(update={"kb": kb})
        base_url = ensure_llm_endpoint(settings)
        port = port or settings.ui_port
        # The Streamlit process reads Settings from the environment: pass on what we resolved.
        # Not a local server's URL: pinned, the UI could not start it again after its idle stop.
        env = {**os.environ, "RAG_KB": settings.kb}
        if settings.llm_base_url:
            env["RAG_LLM_BASE_URL"] = base_url
        typer.echo(f"rag_app UI: http://{host}:{port}  (model endpoint {base_url}; Ctrl-C stops)")
        command = streamlit_command(port, host, settings.max_upload_mb)
        code = run_child(command, env)
        # Ctrl-C is how a person stops the UI: not an error.
        raise typer.Exit(0 if code == 128 + signal.SIGINT else code)
