"""Chunk: a LoadedDoc -> token-bounded Chunks with provenance; never crosses a section or page.

Each section is tokenised once with the embedding model's tokenizer (character offsets per token);
a chunk is a run of at most `size` tokens that ends at the best break found in its second half
(paragraph > line > sentence > word), and the next chunk starts `overlap` tokens earlier at a
word start. Offsets are exact: `doc.text[chunk.start:chunk.end] == chunk.text`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from ingest.load import LoadedDoc, Section
from rag_app.records import Chunk

# (start, end) character spans of the tokens of a text, special tokens excluded.
TokenSpans = Callable[[str], list[tuple[int, int]]]

WORDISH = re.compile(r"\w+|[^\w\s]")
SENTENCE_END = (".", "!", "?", ":", ";")


def regex_token_spans(text: str) -> list[tuple[int, int]]:
    """Fallback tokenizer (words and punctuation) for embeddings without a tokenizer."""
    return [m.span() for m in WORDISH.finditer(text)]


def hf_token_spans(tokenizer: object) -> TokenSpans:
    """Token spans from a Hugging Face fast tokenizer (the embedding model's own)."""

    def spans(text: str) -> list[tuple[int, int]]:
        enc = tokenizer(  # type: ignore[operator]
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [(s, e) for s, e in enc["offset_mapping"] if e > s]

    return spans


def tokenizers_token_spans(tokenizer: Any) -> TokenSpans:
    """Token spans from a `tokenizers.Tokenizer` (truncation and padding off): the same offsets as
    the transformers fast tokenizer that wraps it, without importing transformers (3-10 s)."""

    def spans(text: str) -> list[tuple[int, int]]:
        enc = tokenizer.encode(text, add_special_tokens=False)
        return [(s, e) for s, e in enc.offsets if e > s]

    return spans


def _break_strength(text: str, prev_end: int, next_start: int) -> int:
    """How good a chunk boundary the gap between two tokens is (0 = inside a word)."""
    gap = text[prev_end:next_start]
    if "\n\n" in gap:
        return 4
    if "\n" in gap:
        return 3
    if gap and text[prev_end - 1 : prev_end] in SENTENCE_END:
        return 2
    return 1 if gap else 0


def _pick_end(text: str, spans: list[tuple[int, int]], i: int, size: int) -> int:
    """Exclusive token index where the chunk starting at token i should end."""
    limit = min(i + size, len(spans))
    if limit == len(spans):
        return limit
    best, best_strength = limit, -1
    for b in range(limit, i + max(1, size // 2), -1):
        strength = _break_strength(text, spans[b - 1][1], spans[b][0])
        if strength > best_strength:
            best, best_strength = b, strength
            if strength == 4:
                break
    return best


def _next_start(text: str, spans: list[tuple[int, int]], i: int, end: int, overlap: int) -> int:
    """Start of the next chunk: `overlap` tokens back, moved forward to a word start."""
    k = max(end - overlap, i + 1)
    while k < end and _break_strength(text, spans[k - 1][1], spans[k][0]) == 0:
        k += 1
    return k


def split_section(
    text: str, section: Section, token_spans: TokenSpans, size: int, overlap: int
) -> list[tuple[int, int]]:
    """Absolute (start, end) character spans of the chunks of one section."""
    local = text[section.start : section.end]
    spans = token_spans(local)
    if not spans:
        return []
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        end = _pick_end(local, spans, i, size)
        out.append((section.start + spans[i][0], section.start + spans[end - 1][1]))
        if end >= len(spans):
            break
        i = _next_start(local, spans, i, end, overlap)
    return out


def chunk_id_for(source: str, doc_hash: str, position: int) -> str:
    return hashlib.sha256(f"{source}\x1f{doc_hash}\x1f{position}".encode()).hexdigest()[:24]


def chunk_document(doc: LoadedDoc, token_spans: TokenSpans, size: int, overlap: int) -> list[Chunk]:
    """All chunks of a document, in order, with provenance and stable ids."""
    overlap = min(overlap, size // 2)
    sections: Sequence[Section] = doc.sections or [Section(0, len(doc.text))]
    chunks: list[Chunk] = []
    for section in sections:
        for start, end in split_section(doc.text, section, token_spans, size, overlap):
            position = len(chunks)
            chunks.append(
                Chunk(
                    chunk_id=chunk_id_for(doc.source, doc.doc_hash, position),
                    text=doc.text[start:end],
                    source=doc.source,
                    doc_hash=doc.doc_hash,
                    page=section.page,
                    headings=list(section.headings),
                    start=start,
                    end=end,
                    position=position,
                )
            )
    return chunks
