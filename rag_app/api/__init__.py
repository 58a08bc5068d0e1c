"""HTTP API: the OpenAI-compatible chat endpoint with citations, REST for knowledge bases."""

from rag_app.api.app import create_app

__all__ = ["create_app"]
