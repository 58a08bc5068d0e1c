"""Streamlit pages under AppTest for the UI tests: the app with a hashing embedder in place."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

APP = Path(__file__).resolve().parents[1] / "rag_app" / "ui" / "app.py"


def documents_page(settings: Settings) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["settings"] = settings
    at.session_state["embeddings"] = HashingEmbeddings()
    at.run()
    return at.switch_page("views/documents.py").run()


def unescape(markdown: str) -> str:
    """The text a reader sees: the app escapes every markup character with a backslash."""
    return re.sub(r"\\(.)", r"\1", markdown)
