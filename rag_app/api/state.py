"""API state: what one `rag serve` process holds for all requests (models, open KBs, keys, jobs).

The embedding model, the chat client and each knowledge base are opened once and shared by the
request threads (the catalog and FAISS store lock internally), as the Streamlit UI does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from rag_app.api.backends import open_jobs, open_keys
from rag_app.api.errors import ApiError
from rag_app.api.limits import RateLimiter
from rag_app.api.metrics import ApiMetrics
from rag_app.api.pg_state import in_database
from rag_app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase
    from rag_app.records import Answer

ANSWERS_KEPT = 1000  # chat answers kept for GET /v1/answers/{id} (LangChain drops extensions)


class ApiState:
    """Shared, lazily built resources; each getter is safe to call from many threads."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings | None = None,
        llm: BaseChatModel | Callable[[], BaseChatModel] | None = None,
    ) -> None:
        self.settings = settings
        self.keys = open_keys(settings)
        self.limiter = RateLimiter(settings.api_rate_limit)
        self.metrics = ApiMetrics()
        self._embeddings = embeddings
        self._llm_source = llm
        self._llm: BaseChatModel | None = None
        self._kbs: dict[str, KnowledgeBase] = {}
        self._answers: OrderedDict[str, tuple[str, Answer]] = OrderedDict()
        self._lock = threading.RLock()
        self.jobs = open_jobs(settings, self.kb)  # last: a database worker may call self.kb

    def embeddings(self) -> Embeddings:
        with self._lock:
            if self._embeddings is None:
                from ingest.embed import load_embedder

                self._embeddings = load_embedder(self.settings)
            return self._embeddings

    def llm(self) -> BaseChatModel:
        """The chat client; an unreachable model server raises LLMError (-> 503) and is retried
        on the next request, so the API recovers by itself when the server is back."""
        with self._lock:
            if self._llm is None:
                source = self._llm_source
                if source is None:
                    from rag_app.serving.llm import chat_model

                    self._llm = chat_model(self.settings)
                else:
                    self._llm = source() if callable(source) else source
            return self._llm

    def kb_names(self) -> list[str]:
        from ingest.kb import list_kbs

        return list_kbs(self.settings)

    def kb(self, name: str, create: bool = False) -> KnowledgeBase:
        """The open KB `name` (404 when it does not exist and `create` is False)."""
        from ingest.kb import KB_NAME, open_kb

        if not KB_NAME.match(name):
            raise ApiError(
                400,
                f"invalid knowledge base name {name!r}: use letters, digits, '.', '_' or '-' "
                "(at most 64 characters)",
                "invalid_kb_name",
            )
        with self._lock:
            if name in self._kbs and not (create or self._removed_elsewhere(name)):
                return self._kbs[name]
            if not create and name not in self.kb_names():
                raise ApiError(404, f"knowledge base {name!r} does not exist", "kb_not_found")
            base = open_kb(name, self.settings, create=create, embeddings=self.embeddings())
            self._kbs[name] = base
            return base

    def _removed_elsewhere(self, name: str) -> bool:
        """With the KBs in the database, another replica may have deleted an open one."""
        if not in_database(self.settings) or name in self.kb_names():
            return False
        self._kbs.pop(name).close()
        return True

    def forget_kb(self, name: str) -> None:
        with self._lock:
            base = self._kbs.pop(name, None)
        if base is not None:
            base.close()

    def remember(self, answer_id: str, owner: str, answer: Answer) -> None:
        with self._lock:
            self._answers[answer_id] = (owner, answer)
            while len(self._answers) > ANSWERS_KEPT:
                self._answers.popitem(last=False)

    def recall(self, answer_id: str, owner: str) -> Answer | None:
        with self._lock:
            found = self._answers.get(answer_id)
        return found[1] if found and found[0] == owner else None

    def close(self) -> None:
        self.jobs.shutdown()
        with self._lock:
            for base in self._kbs.values():
                base.close()
            self._kbs.clear()
        self.keys.close()
