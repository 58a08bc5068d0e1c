"""Fakes for fast unit tests: they implement the real LangChain interfaces, nothing is patched."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

WORD = re.compile(r"\w+")


class HashingEmbeddings(Embeddings):
    """Deterministic bag-of-words embeddings: texts sharing words get similar unit vectors."""

    def __init__(self, dim: int = 64, model_name: str = "fake-hashing") -> None:
        self.dim = dim
        self.model_name = model_name

    def _embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in WORD.findall(text.lower()):
            digest = hashlib.sha1(word.encode()).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


class KeyedChat(BaseChatModel):
    """A chat model that replies by what the prompt contains (first matching key wins).

    For runs that ask several questions at once or in any order (quality runs), where a reply
    list in call order would pair answers with the wrong questions.
    """

    replies: dict[str, str]
    default: str = "no reply scripted for this prompt"

    @property
    def _llm_type(self) -> str:
        return "keyed"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        prompt = str(messages[-1].content)
        text = next((r for key, r in self.replies.items() if key in prompt), self.default)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


class LogprobChat(BaseChatModel):
    """Replies with one token and the log-probabilities a vLLM server would attach."""

    top: dict[str, float]
    seen: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "logprob-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.seen.append({"prompt": str(messages[-1].content), **kw})
        token = max(self.top, key=lambda t: self.top[t])
        content = [
            {
                "token": token,
                "logprob": self.top[token],
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in self.top.items()],
            }
        ]
        message = AIMessage(token, response_metadata={"logprobs": {"content": content}})
        return ChatResult(generations=[ChatGeneration(message=message)])
