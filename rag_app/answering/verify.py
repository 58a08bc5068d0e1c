"""Citation verification: after generation, check each answer sentence against its cited passage.

Support of a sentence by a passage = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * cosine, where
lexical is the share of the sentence's content words found in the passage and cosine is the best
embedding cosine between the sentence and one sentence of the passage (that sentence is the quote).
`settings.support_threshold` and LEXICAL_WEIGHT are calibrated by bench/calibrate_answering.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rag_app.records import Citation, Hit, SentenceCheck
from rag_app.words import WORD, content_words

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

LEXICAL_WEIGHT = 0.6
MARKER = re.compile(r"\[(\d{1,3})\]")
# Sentence ends, and blank lines (paragraphs, headings); a single newline is only line wrapping.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])|\n\s*\n")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; keeps [n] markers with the sentence they end."""
    # "Done. [2] Next" -> "Done [2]. Next": a marker after the full stop belongs to that sentence.
    text = re.sub(
        r"([.!?])\s*((?:\[\d{1,3}\]\s*)+)", lambda m: f" {m.group(2).strip()}{m.group(1)} ", text
    )
    parts = [" ".join(p.split()) for p in SENTENCE_END.split(text.strip()) if p and p.strip()]
    merged: list[str] = []
    for part in parts:  # a part that is only markers ("[2]") belongs to the previous sentence
        if merged and not MARKER.sub("", part).strip():
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def markers_in(sentence: str) -> list[int]:
    return [int(m) for m in MARKER.findall(sentence)]


def strip_markers(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", text)).strip()


def lexical_support(sentence: str, passage: str) -> float:
    """Share of the sentence's content words that occur in the passage (0..1)."""
    words = content_words(sentence)
    if not words:
        return 0.0
    vocab = set(content_words(passage)) | {w.lower() for w in WORD.findall(passage)}
    return sum(w in vocab for w in words) / len(words)


@dataclass(frozen=True)
class Support:
    score: float
    quote: str


def _unit(embeddings: Embeddings, texts: list[str]) -> np.ndarray:
    matrix = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    return np.asarray(matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12))


def support_matrix(
    sentences: list[str], hits: list[Hit], embeddings: Embeddings | None
) -> list[list[Support]]:
    """Support of each sentence by each hit; the best-supporting passage sentence is the quote."""
    passages = [split_sentences(h.chunk.text) or [h.chunk.text] for h in hits]
    flat = [s for p in passages for s in p]
    cos: np.ndarray | None = None
    if embeddings is not None and sentences and flat:
        vectors = _unit(embeddings, [strip_markers(s) for s in sentences] + flat)
        cos = vectors[: len(sentences)] @ vectors[len(sentences) :].T
    table: list[list[Support]] = []
    for i, sentence in enumerate(sentences):
        clean = strip_markers(sentence)
        row: list[Support] = []
        offset = 0
        for hit, parts in zip(hits, passages, strict=True):
            lexical = lexical_support(clean, hit.chunk.text)
            part_lex = [lexical_support(clean, p) for p in parts]
            part_cos = cos[i, offset : offset + len(parts)] if cos is not None else None
            offset += len(parts)
            if part_cos is None:
                best, score = int(np.argmax(part_lex)), lexical
            else:
                best = int(np.argmax(np.asarray(part_lex) + part_cos))
                score = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * float(part_cos.max())
            row.append(Support(score=round(max(0.0, min(1.0, score)), 4), quote=parts[best]))
        table.append(row)
    return table


def check_sentence(sentence: str, row: list[Support], threshold: float) -> SentenceCheck:
    """Keep a cited marker that is supported, else re-attach to the best passage, else flag.

    A marker beyond the number of passages is treated like a wrong marker (never an IndexError).
    """
    given = markers_in(sentence)
    cited = [m for m in given if 1 <= m <= len(row)]
    original = given[0] if given else None
    if not row:
        return SentenceCheck(
            sentence=sentence, marker=None, original_marker=original, support=0.0, supported=False
        )
    for marker in cited:
        if row[marker - 1].score >= threshold:
            return SentenceCheck(
                sentence=sentence,
                marker=marker,
                original_marker=original,
                support=row[marker - 1].score,
                supported=True,
            )
    best = max(range(len(row)), key=lambda j: row[j].score)
    supported = row[best].score >= threshold
    return SentenceCheck(
        sentence=sentence,
        marker=best + 1 if supported else None,
        original_marker=original,
        support=row[best].score,
        supported=supported,
    )


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """Offsets of a quote in the chunk text it was split from (sentences join whitespace runs)."""
    words = quote.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return (match.start(), match.end()) if match else None


def verify(
    answer_text: str, hits: list[Hit], embeddings: Embeddings | None, threshold: float
) -> tuple[list[SentenceCheck], list[Citation], float]:
    """Check every sentence of an answer; return the checks, the citations and the mean support."""
    sentences = split_sentences(answer_text)
    if not sentences or not hits:
        return [], [], 0.0
    table = support_matrix(sentences, hits, embeddings)
    checks = [check_sentence(s, row, threshold) for s, row in zip(sentences, table, strict=True)]
    citations: dict[int, Citation] = {}
    for check, row in zip(checks, table, strict=True):
        if check.marker is None or check.marker in citations:
            continue
        hit, support = hits[check.marker - 1], row[check.marker - 1]
        where = locate(support.quote, hit.chunk.text)
        citations[check.marker] = Citation(
            marker=check.marker,
            chunk_id=hit.chunk.chunk_id,
            source=hit.chunk.source,
            page=hit.chunk.page,
            section=hit.chunk.section,
            quote=support.quote,
            support=support.score,
            start=hit.chunk.start + where[0] if where else None,
            end=hit.chunk.start + where[1] if where else None,
        )
    mean = sum(c.support for c in checks) / len(checks)
    return checks, sorted(citations.values(), key=lambda c: c.marker), round(mean, 4)


def rewrite_markers(checks: list[SentenceCheck]) -> str:
    """The answer with each sentence's marker replaced by its verified one (none if flagged)."""
    out = []
    for check in checks:
        body = strip_markers(check.sentence)
        out.append(f"{body} [{check.marker}]" if check.marker is not None else body)
    return " ".join(out)
