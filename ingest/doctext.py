"""Document text for the source viewer: a window of a stored document, rebuilt from its chunks.

The catalog keeps every chunk's exact text with its character offsets into the document's text
(`Chunk.start`/`Chunk.end`), so the document around a chunk is rebuilt from those rows: no second
copy of the text, no re-reading of a file that may have changed since it was ingested, and every
offset (a chunk's, a citation's quote) points into the same text the answer was built from.
Only the characters between sections (blank lines, a page break) are not in any chunk; they are
reported as gaps, so a viewer shows a paragraph break there and the offsets stay exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag_app.records import Chunk

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase


@dataclass(frozen=True)
class Segment:
    """Document text from `start` (a character offset into the document) on."""

    start: int
    text: str
    page: int | None = None
    headings: tuple[str, ...] = ()
    heading_starts: bool = False  # the segment opens its section with the heading's text

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class DocumentWindow:
    """Consecutive chunks of one document, as non-overlapping text segments in document order."""

    source: str
    segments: list[Segment]
    first_position: int
    last_position: int
    total_chunks: int
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def has_before(self) -> bool:
        return self.first_position > 0

    @property
    def has_after(self) -> bool:
        return self.last_position < self.total_chunks - 1

    def text_at(self, start: int, end: int) -> str:
        """The document text between two offsets, where the window holds it (gaps left out)."""
        return "".join(
            s.text[max(start, s.start) - s.start : min(end, s.end) - s.start]
            for s in self.segments
            if s.start < end and s.end > start
        )


def segments_of(chunks: list[Chunk]) -> list[Segment]:
    """Chunks (any order, may overlap) -> non-overlapping segments; overlaps are kept once."""
    segments: list[Segment] = []
    cursor = -1
    previous: tuple[str, ...] | None = None
    for chunk in sorted(chunks, key=lambda c: (c.start, c.position)):
        headings = tuple(chunk.headings)
        if chunk.end <= cursor:
            continue  # wholly inside text already placed
        start = max(chunk.start, cursor)
        text = chunk.text[start - chunk.start :]
        new_section = headings != previous or (segments and segments[-1].page != chunk.page)
        opens = bool(new_section and headings and text.startswith(headings[-1]))
        if segments and start == cursor and not new_section:
            last = segments[-1]
            segments[-1] = Segment(
                last.start, last.text + text, last.page, last.headings, last.heading_starts
            )
        else:
            segments.append(Segment(start, text, chunk.page, headings, opens))
        cursor = chunk.end
        previous = headings
    return segments


def document_window(
    kb: KnowledgeBase, chunk_id: str, before: int = 0, after: int = 1
) -> DocumentWindow | None:
    """The chunk `chunk_id` with `before` chunks ahead of it and `after` behind (None if gone)."""
    rows = kb.get_chunks([chunk_id])
    if not rows:
        return None
    target = rows[0]
    around = kb.neighbours(chunk_id, window=max(before, after, 0))
    low, high = target.position - before, target.position + after
    chunks = [c for c in around if low <= c.position <= high] or [target]
    document = kb.catalog.document(target.source)
    total = document.chunks if document else max(c.position for c in chunks) + 1
    return DocumentWindow(
        source=target.source,
        segments=segments_of(chunks),
        first_position=min(c.position for c in chunks),
        last_position=max(c.position for c in chunks),
        total_chunks=total,
        chunks=sorted(chunks, key=lambda c: c.position),
    )


def quote_offsets(chunk: Chunk, quote: str) -> tuple[int, int] | None:
    """Document offsets of `quote` inside the cited chunk's stored text (None if it is not there).

    The quote is a sentence the verifier took from this chunk, so it is looked up in this chunk
    only (never in the whole document, where the same words may occur elsewhere). Sentence
    splitting joins a sentence's lines with single spaces (PDF text breaks every line), so any
    run of whitespace in the chunk matches a space of the quote.
    """
    words = quote.split()
    if not words:
        return None
    at = chunk.text.find(quote.strip())
    if at >= 0:
        return chunk.start + at, chunk.start + at + len(quote.strip())
    found = re.search(r"\s+".join(re.escape(w) for w in words), chunk.text)
    if found is None:
        return None
    return chunk.start + found.start(), chunk.start + found.end()
