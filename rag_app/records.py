"""Records: the few data types that flow from ingestion through answering to UI, CLI and eval."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The one abstention phrase. The prompts tell the model to say it, the code checks for it,
# and the tests import it from here (never a copy of the string).
ABSTAIN_PHRASE = "I don't know based on the provided documents."
# Streamed between two drafts when answering retries over a wider context: a line break for
# front ends that just append the text, a marker for those that label each draft.
DRAFT_RESTART = "\n"

Mode = Literal["direct", "cot", "cited", "agent"]
# confident: the gate trusts the grounded span; tentative: the span is grounded in a passage but
# the gate is unsure, so it is shown as "probably X, not verified" with its quote; abstained.
AnswerKind = Literal["confident", "tentative", "abstained"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Chunk(Record):
    """A piece of a source document, with provenance."""

    chunk_id: str = Field(description="Stable id: hash of source path, content hash and position.")
    text: str
    source: str = Field(description="Source file path as ingested (absolute).")
    doc_hash: str = Field(description="sha256 of the source document's bytes.")
    page: int | None = Field(default=None, description="1-based PDF page, when paged.")
    headings: list[str] = Field(default_factory=list, description="Heading path, outermost first.")
    start: int = Field(description="Character offset of the chunk in the document's text.")
    end: int = Field(description="End character offset (exclusive).")
    position: int = Field(default=0, description="Index of the chunk within its document.")

    @property
    def section(self) -> str:
        return " > ".join(self.headings)

    def to_metadata(self) -> dict[str, Any]:
        """Flat metadata for vector stores (lists are joined: Chroma takes scalars only)."""
        meta = self.model_dump(exclude={"text", "headings"})
        meta["headings"] = "\x1f".join(self.headings)
        if meta["page"] is None:
            meta["page"] = -1
        return meta

    @classmethod
    def from_metadata(cls, text: str, meta: dict[str, Any]) -> Chunk:
        data = {k: v for k, v in meta.items() if k in cls.model_fields}
        headings = meta.get("headings") or ""
        data["headings"] = headings.split("\x1f") if isinstance(headings, str) and headings else []
        data["page"] = None if meta.get("page") in (None, -1) else int(meta["page"])
        return cls(text=text, **data)


class Hit(Record):
    """A retrieved chunk with the scores from each retriever."""

    chunk: Chunk
    score: float = Field(description="Fused score (reciprocal rank fusion); higher is better.")
    dense_score: float | None = Field(default=None, description="Cosine similarity, if found.")
    dense_rank: int | None = None
    keyword_score: float | None = Field(default=None, description="BM25 score, if found.")
    keyword_rank: int | None = None


class Citation(Record):
    """Where an answer sentence comes from: a chunk and the span of it that supports it."""

    marker: int = Field(description="The [n] number shown to the user (1-based).")
    chunk_id: str
    source: str
    page: int | None = None
    section: str = ""
    quote: str = Field(description="The supporting span quoted from the chunk.")
    support: float = Field(default=0.0, description="Support score of the cited sentence(s).")
    start: int | None = Field(
        default=None, description="Character offset of the quote in the document text, if known."
    )
    end: int | None = Field(default=None, description="End offset of the quote (exclusive).")


class SentenceCheck(Record):
    """Verification of one answer sentence against the passage it cites."""

    sentence: str
    marker: int | None = Field(description="Marker after re-attachment; None if unsupported.")
    original_marker: int | None = None
    support: float
    supported: bool


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Timings(Record):
    retrieval_s: float = 0.0
    first_token_s: float | None = None
    total_s: float = 0.0


class AgentStep(Record):
    """One ReAct step: what the model thought and did, and what it saw."""

    index: int
    thought: str
    action: str
    action_input: str
    observation: str
    error: str | None = None
    usage: Usage = Usage()
    seconds: float = 0.0


class Answer(Record):
    """What every caller (CLI, API, UI, eval) gets back for a question."""

    question: str
    standalone_question: str = Field(description="The question after condensing with history.")
    text: str = Field(description="The answer (the span itself when tentative).")
    abstained: bool = Field(description="True only for kind 'abstained'.")
    kind: AnswerKind = Field(
        default="confident",
        description="confident, tentative (grounded but unsure: show with its quote) or abstained.",
    )
    p_correct: float | None = Field(
        default=None, description="The answer gate's estimate that the answer is right."
    )
    signals: dict[str, float] = Field(
        default_factory=dict, description="What the answer gate saw (rag_app/answering/gate.py)."
    )
    mode: Mode
    prompt_name: str
    citations: list[Citation] = Field(default_factory=list)
    sentences: list[SentenceCheck] = Field(default_factory=list)
    support_score: float = Field(default=0.0, description="Mean support of answer sentences.")
    confidence: float | None = Field(
        default=None, description="Mean token probability of the model's answer, when known."
    )
    reasoning: str = Field(default="", description="Chain-of-thought, kept apart from the answer.")
    hits: list[Hit] = Field(default_factory=list, description="Passages given to the model.")
    related: list[Hit] = Field(
        default_factory=list, description="Closest passages, shown when the answer abstains."
    )
    plan: list[str] = Field(default_factory=list, description="Agent sub-questions.")
    steps: list[AgentStep] = Field(default_factory=list, description="Agent trace.")
    message: str = Field(default="", description="Notice for the user (e.g. empty knowledge base).")
    usage: Usage = Usage()
    timings: Timings = Timings()

    @model_validator(mode="before")
    @classmethod
    def _kind_from_abstained(cls, data: Any) -> Any:
        # Callers that predate answer kinds pass only `abstained`; the two never disagree.
        if isinstance(data, dict) and "kind" not in data and data.get("abstained"):
            data = {**data, "kind": "abstained"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Answer:
        if self.abstained != (self.kind == "abstained"):
            raise ValueError(f"abstained={self.abstained} contradicts kind={self.kind!r}")
        return self

    @property
    def tentative(self) -> bool:
        return self.kind == "tentative"

    @property
    def quote(self) -> str:
        """The passage sentence that supports the answer (first citation's quote), if any."""
        return self.citations[0].quote if self.citations else ""

    def display_text(self) -> str:
        """The answer as a person should read it: a tentative one is labelled as unverified."""
        if self.kind == "tentative":
            return f"Probably {self.text} (not verified)"
        return self.text
