"""Source viewer text: document windows rebuilt from stored chunks, quote offsets, escaped HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.doctext import document_window, quote_offsets, segments_of
from ingest.kb import KnowledgeBase, open_kb
from ingest.load import parse_bytes
from ingest.pipeline import ingest_paths
from rag_app.records import Chunk
from rag_app.settings import Settings
from rag_app.ui.source_view import window_html
from tests.fakes import HashingEmbeddings

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
SAMPLE_FILES = sorted(
    p.name for p in SAMPLES.iterdir() if p.suffix in {".md", ".txt", ".html", ".docx", ".pdf"}
)


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    # Small chunks so every sample has several, with overlaps between them.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("doctext"), chunk_size=40, chunk_overlap=10
    )
    kb = open_kb("default", settings=settings, create=True, embeddings=HashingEmbeddings())
    summary = ingest_paths([SAMPLES], kb)
    assert not summary.failed and summary.added >= 5
    return kb


def _chunks_of(kb: KnowledgeBase, name: str) -> list[Chunk]:
    source = str(SAMPLES / name)
    ids = kb.catalog.source_ids(source)
    rows = kb.catalog.by_ids(ids)
    chunks = [kb.get_chunks([r.chunk_id])[0] for r in rows.values()]
    return sorted(chunks, key=lambda c: c.position)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_whole_document_is_rebuilt_at_its_offsets(sample_kb: KnowledgeBase, name: str) -> None:
    path = SAMPLES / name
    loaded = parse_bytes(str(path), path.suffix, path.read_bytes())
    chunks = _chunks_of(sample_kb, name)
    assert len(chunks) >= 2, "the sample should span several chunks"
    window = document_window(sample_kb, chunks[0].chunk_id, before=0, after=len(chunks))
    assert window is not None and window.total_chunks == len(chunks)
    assert not window.has_before and not window.has_after
    covered = 0
    for seg in window.segments:
        assert seg.text == loaded.text[seg.start : seg.end]
        covered += len(seg.text)
    # Only the breaks between sections (no chunk holds them) are missing: whitespace.
    assert covered == len(loaded.text) - sum(c.isspace() for c in _gaps(loaded.text, window))
    ends = [(s.start, s.end) for s in window.segments]
    assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:], strict=False)), "no overlaps"


def _gaps(text: str, window: object) -> str:
    segments = window.segments  # type: ignore[attr-defined]
    gaps, cursor = [], 0
    for seg in segments:
        gaps.append(text[cursor : seg.start])
        cursor = seg.end
    gaps.append(text[cursor:])
    joined = "".join(gaps)
    assert not joined.strip(), f"text outside every chunk: {joined!r}"
    return joined


def test_window_around_a_middle_chunk_pages_on_demand(sample_kb: KnowledgeBase) -> None:
    chunks = _chunks_of(sample_kb, "harrow_point_lighthouse.md")
    middle = chunks[len(chunks) // 2]
    small = document_window(sample_kb, middle.chunk_id, before=0, after=0)
    assert small is not None and [c.position for c in small.chunks] == [middle.position]
    assert small.has_before == (middle.position > 0)
    wider = document_window(sample_kb, middle.chunk_id, before=1, after=1)
    assert wider is not None and len(wider.chunks) == min(3, len(chunks))
    assert wider.text_at(middle.start, middle.end) == middle.text


def test_pdf_segments_carry_their_page(sample_kb: KnowledgeBase) -> None:
    chunks = _chunks_of(sample_kb, "tolwen_ferry.pdf")
    window = document_window(sample_kb, chunks[0].chunk_id, after=len(chunks))
    assert window is not None
    assert {s.page for s in window.segments} == {c.page for c in chunks} and None not in {
        s.page for s in window.segments
    }
    assert "Page 1" in window_html(window, None)


def test_markdown_headings_open_their_sections(sample_kb: KnowledgeBase) -> None:
    chunks = _chunks_of(sample_kb, "harrow_point_lighthouse.md")
    window = document_window(sample_kb, chunks[0].chunk_id, after=len(chunks))
    assert window is not None
    opening = [s for s in window.segments if s.heading_starts]
    assert opening and all(s.text.startswith(s.headings[-1]) for s in opening)
    assert f'<strong class="rag-heading">{opening[0].headings[-1]}</strong>' in window_html(
        window, None
    )


def test_missing_chunk_gives_none(sample_kb: KnowledgeBase) -> None:
    assert document_window(sample_kb, "no-such-chunk") is None


def _chunk(
    text: str, start: int = 100, position: int = 0, headings: list[str] | None = None
) -> Chunk:
    return Chunk(
        chunk_id=f"c{position}",
        text=text,
        source="/d/x.md",
        doc_hash="h",
        start=start,
        end=start + len(text),
        position=position,
        headings=headings or [],
    )


def test_quote_offsets_point_into_the_document() -> None:
    chunk = _chunk("Intro. The lamp was lit\nin 1887 by Ada. The end.")
    assert quote_offsets(chunk, "The end.") == (
        100 + chunk.text.index("The end."),
        100 + len(chunk.text),
    )
    # The verifier's sentences join lines with a space: still found, original text kept.
    start, end = quote_offsets(chunk, "The lamp was lit in 1887 by Ada.") or (0, 0)
    assert chunk.text[start - 100 : end - 100] == "The lamp was lit\nin 1887 by Ada."
    assert quote_offsets(chunk, "Not in this chunk.") is None
    assert quote_offsets(chunk, "  ") is None


def test_overlapping_chunks_become_one_segment() -> None:
    a = _chunk("alpha beta gamma", start=0, position=0)
    b = _chunk("gamma delta", start=11, position=1)
    segments = segments_of([b, a])
    assert [(s.start, s.text) for s in segments] == [(0, "alpha beta gamma delta")]


def test_document_markup_is_escaped_and_the_mark_holds_the_span() -> None:
    text = "Intro <script>alert(1)</script> & <b>bold</b>. Ada Marsh built it."
    chunk = _chunk(text, start=0, headings=["Intro"])
    window = document_window_from([chunk])
    start, end = quote_offsets(chunk, "Ada Marsh built it.") or (0, 0)
    out = window_html(window, (start, end))
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out and "&amp;" in out
    marks = re.findall(r'<mark data-testid="rag-mark">(.*?)</mark>', out)
    assert marks == ["Ada Marsh built it."]


def test_mark_across_a_heading_stays_one_element() -> None:
    chunk = _chunk("Title\n\nFirst sentence here.", start=0, headings=["Title"])
    window = document_window_from([chunk])
    out = window_html(window, (0, len(chunk.text)))
    assert out.count("<mark") == 1 and out.count("</mark>") == 1


def document_window_from(chunks: list[Chunk]):  # type: ignore[no-untyped-def]
    from ingest.doctext import DocumentWindow

    return DocumentWindow(
        source="/d/x.md",
        segments=segments_of(chunks),
        first_position=0,
        last_position=len(chunks) - 1,
        total_chunks=len(chunks),
        chunks=chunks,
    )
