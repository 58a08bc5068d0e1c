"""rag_app: question answering and agents over your own documents (the online half)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ask", "ask_stream"]

if TYPE_CHECKING:
    from rag_app.pipeline import ask, ask_stream


def __getattr__(name: str) -> Any:
    # Lazy so that `import rag_app` (e.g. for settings) does not load torch or LangChain.
    if name in __all__:
        from rag_app import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
