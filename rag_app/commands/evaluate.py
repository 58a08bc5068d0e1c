"""CLI commands (evaluate); heavy imports stay inside the command functions so `rag --help` is fast."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
