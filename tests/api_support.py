"""Helpers for the HTTP API tests: an app over a real KB (fake embeddings, fake chat model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from ingest.kb import open_kb
from ingest.pipeline import ingest_texts
from rag_app.api import create_app
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings

DOCS = [
    ("lighthouse.txt", "The Harbor Point Lighthouse was built by Elena Marsh. "
     "It was completed in 1887 after four years of work."),
    ("bakery.txt", "The Old Mill Bakery sells rye bread. It opened in 1952 on Canal Street."),
]  # fmt: skip
SECRET_DOCS = [("plans.txt", "The secret vault code is 4711. Only the board may know it.")]
ANSWER = '{"answer": "elena marsh"}'


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "min_relevance": 0.0,
        "top_k": 2,
        "api_rate_limit": 0,
    }
    values.update(overrides)
    return Settings(**values)


def build_kbs(settings: Settings, embeddings: HashingEmbeddings) -> None:
    """Two KBs on disk: `docs` (lighthouse, bakery) and `secret`."""
    for name, docs in (("docs", DOCS), ("secret", SECRET_DOCS)):
        base = open_kb(name, settings=settings, create=True, embeddings=embeddings)
        ingest_texts(docs, base)
        base.close()


def make_app(settings: Settings, replies: list[str] | None = None) -> Any:
    embeddings = HashingEmbeddings()
    build_kbs(settings, embeddings)
    llm = FakeListChatModel(responses=replies or [ANSWER])
    return create_app(settings, embeddings=embeddings, llm=llm)


def sse_events(text: str) -> list[Any]:
    """The data payloads of an SSE body: parsed JSON, or the string '[DONE]'."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
