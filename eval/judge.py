"""Claim judges: label a claim supported, unsupported or contradicted (offline or LLM judge)."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from eval import claims as feat

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

Label = Literal["supported", "unsupported", "contradicted"]
LABELS: tuple[Label, ...] = ("supported", "unsupported", "contradicted")


@dataclass(frozen=True)
class Verdict:
    label: Label
    score: float  # support in [0, 1] of the best evidence sentence
    evidence: str = ""  # the evidence sentence the verdict rests on
    reason: str = ""


class ClaimJudge(Protocol):
    name: str

    def judge(self, claim: str, evidence: Sequence[str]) -> Verdict: ...


@dataclass(frozen=True)
class Thresholds:
    # Chosen on the judge-check set (eval/data/README.md); F1 of "unsupported" moves < 0.02
    # for support in 0.40-0.65, so the choice is not a knife edge.
    support: float = 0.45  # combined overlap+similarity needed for "supported"
    topical: float = 0.3  # best sentence is about the same thing (needed to call a contradiction)
    entity_topical: float = 0.5  # the same, for a contradiction by a swapped name


class OfflineJudge:
    """Deterministic judge: lexical overlap, numbers/dates, entities, negation and MiniLM cosine.

    A claim is *contradicted* when its best-matching evidence sentence is on topic but disagrees
    on a number/date, an entity or negation; *supported* when support is high and every number
    and entity of the claim occurs in the evidence; otherwise *unsupported*.
    """

    name = "offline"

    def __init__(
        self,
        embeddings: Embeddings | None = None,
        thresholds: Thresholds | None = None,
        candidates: int = 8,
    ):
        self.embeddings = embeddings
        self.thresholds = thresholds or Thresholds()
        self.candidates = candidates
        self._cache: dict[str, list[float]] = {}
        self._lock = threading.Lock()  # embedders are not promised to be thread-safe

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        assert self.embeddings is not None
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vec in zip(
                    missing, self.embeddings.embed_documents(missing), strict=True
                ):
                    self._cache[text] = vec
            if len(self._cache) > 20_000:  # bound memory on long runs
                self._cache.clear()
            return [self._cache.get(t) or self.embeddings.embed_query(t) for t in texts]

    def _similarities(self, claim: str, sentences: list[str]) -> list[float]:
        if self.embeddings is None:
            return [_overlap(claim, s) for s in sentences]
        vecs = self._vectors([claim, *sentences])
        return [_cosine(vecs[0], v) for v in vecs[1:]]

    def judge(self, claim: str, evidence: Sequence[str]) -> Verdict:
        sentences = [s for text in evidence for s in feat.split_sentences(text)]
        if not sentences or not feat.words(claim):
            return Verdict("unsupported", 0.0, reason="no evidence")
        # Only the lexically closest sentences are embedded: a sentence sharing no word with
        # the claim cannot be its best support, and embedding is the judge's whole cost.
        sentences = sorted(sentences, key=lambda s: -_overlap(claim, s))[: self.candidates]
        sims = self._similarities(claim, sentences)
        scored = [
            (0.5 * _overlap(claim, s) + 0.5 * max(sim, 0.0), s)
            for s, sim in zip(sentences, sims, strict=True)
        ]
        support, best = max(scored)
        clash = _clash(claim, best)
        # A swapped name needs a closer match than a changed number or polarity: an on-topic
        # claim about another place is more often merely unsupported than contradicted.
        bar = (
            self.thresholds.entity_topical
            if clash.startswith("entity")
            else self.thresholds.topical
        )
        if clash and (support >= bar or _overlap(claim, best) >= 0.5):
            return Verdict("contradicted", support, best, clash)
        missing = _missing(claim, " ".join(evidence))
        if support >= self.thresholds.support and not missing:
            return Verdict("supported", support, best)
        reason = missing or f"support {support:.2f} < {self.thresholds.support}"
        return Verdict("unsupported", support, best, reason)


def _overlap(claim: str, sentence: str) -> float:
    tokens = feat.content_tokens(claim)
    if not tokens:
        return 0.0
    return len(tokens & feat.content_tokens(sentence)) / len(tokens)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _clash(claim: str, sentence: str) -> str:
    """Why an on-topic sentence disagrees with the claim ("" when it does not)."""
    if feat.negation_count(claim) % 2 != feat.negation_count(sentence) % 2:
        return "negation differs"
    c_nums, s_nums = feat.numbers(claim), feat.numbers(sentence)
    if c_nums - s_nums and s_nums - c_nums:
        return f"number/date {sorted(c_nums - s_nums)} vs {sorted(s_nums - c_nums)}"
    c_ents, s_ents = feat.entities(claim), feat.content_tokens(sentence)
    swapped = c_ents - s_ents
    if swapped and feat.entities(sentence) - feat.content_tokens(claim):
        return f"entity {sorted(swapped)} not in evidence sentence"
    return ""


def _missing(claim: str, evidence: str) -> str:
    """Numbers or entities of the claim found nowhere in the evidence ("" if none)."""
    lost_nums = feat.numbers(claim) - feat.numbers(evidence)
    if lost_nums:
        return f"number/date {sorted(lost_nums)} not in evidence"
    lost_ents = feat.entities(claim) - feat.content_tokens(evidence)
    if lost_ents:
        return f"entity {sorted(lost_ents)} not in evidence"
    return ""


class LLMJudge:
    """Judge through any OpenAI-compatible chat endpoint with prompts/judge.jinja (JSON schema)."""

    name = "llm"

    def __init__(self, llm: BaseChatModel, prompt: str = "judge"):
        self.llm = llm
        self.prompt = prompt

    def judge(self, claim: str, evidence: Sequence[str]) -> Verdict:
        from rag_app.prompts import render_prompt

        if not evidence:
            return Verdict("unsupported", 0.0, reason="no evidence")
        text = render_prompt(self.prompt, claim=claim, passages=list(evidence))
        schema = {
            "title": "ClaimVerdict",
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": list(LABELS)},
                "evidence": {"type": "string"},
            },
            "required": ["label", "evidence"],
        }
        structured = self.llm.with_structured_output(schema, method="json_schema")
        try:
            out = structured.invoke(text)
        except Exception as exc:  # a malformed reply is one unsupported claim, not a failed run
            return Verdict("unsupported", 0.0, reason=f"judge error: {exc}"[:200])
        data: dict[str, Any] = out if isinstance(out, dict) else {}
        label = data.get("label")
        if label not in LABELS:
            return Verdict("unsupported", 0.0, reason=f"judge gave {label!r}")
        score = {"supported": 1.0, "unsupported": 0.5, "contradicted": 0.0}[label]
        return Verdict(label, score, str(data.get("evidence", ""))[:500])
