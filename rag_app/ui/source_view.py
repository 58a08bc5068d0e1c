"""UI source viewer: a cited passage opened in its document, the quoted span in a <mark>.

The text comes from the knowledge base's stored chunks (ingest.doctext) and the highlight from
character offsets (the citation's `start`/`end`), never from searching the document for the
words. Only a window of chunks around the cited one is rendered; "Earlier"/"Later" page on
demand, so a 1,000-page PDF opens as fast as a note. Every character of document text is
HTML-escaped: nothing from a document is ever markup or script.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from ingest.doctext import DocumentWindow, document_window, quote_offsets
from rag_app.errors import RagError
from rag_app.records import Answer, Citation
from rag_app.ui import state
from rag_app.ui.text import as_text, short_source

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase

WINDOW_KEY = "source_window"  # session key: {chunk_id: (before, after)}
PAGE_STEP = 2  # chunks added per "Earlier"/"Later" click
STYLE = (
    "<style>.rag-doc{white-space:pre-wrap;font-size:0.95rem;line-height:1.55;"
    "max-height:60vh;overflow-y:auto;padding:0.5rem 0.75rem;border:1px solid #ddd;"
    "border-radius:0.5rem}.rag-doc mark{background:#ffe066;padding:0 1px}"
    ".rag-page{display:block;color:#888;font-size:0.8rem;margin:0.4rem 0}"
    ".rag-heading{font-size:1.05rem}</style>"
)


@dataclass(frozen=True)
class SourceRef:
    """What to open: a chunk, and the quoted span in document offsets (if any)."""

    chunk_id: str
    label: str
    start: int | None = None
    end: int | None = None


def anchor_citations(answer: Answer, kb: KnowledgeBase | None = None) -> Answer:
    """The answer with each citation's quote located (document offsets) in its cited chunk.

    Done once, when the answer arrives; the offsets are then stored with the chat, so the
    viewer never has to look for the words again.
    """
    chunks = {h.chunk.chunk_id: h.chunk for h in [*answer.hits, *answer.related]}
    missing = [c.chunk_id for c in answer.citations if c.chunk_id not in chunks]
    if missing and kb is not None:
        chunks.update({c.chunk_id: c for c in kb.get_chunks(missing)})
    cited: list[Citation] = []
    for citation in answer.citations:
        chunk = chunks.get(citation.chunk_id)
        span = quote_offsets(chunk, citation.quote) if chunk and citation.start is None else None
        if span:
            citation = citation.model_copy(update={"start": span[0], "end": span[1]})
        cited.append(citation)
    return answer.model_copy(update={"citations": cited})


def window_html(window: DocumentWindow, mark: tuple[int, int] | None) -> str:
    """The window as escaped HTML: headings in bold, page labels, the span in one <mark>."""
    out = [STYLE, '<div class="rag-doc" data-testid="rag-document">']
    page: int | None = None
    for i, seg in enumerate(window.segments):
        if seg.page is not None and seg.page != page:
            out.append(f'<span class="rag-page">Page {seg.page}</span>')
        elif i:
            out.append("\n\n")  # between sections: the blank line that no chunk holds
        page = seg.page
        heading_end = seg.start + len(seg.headings[-1]) if seg.heading_starts else seg.start
        out.append(_segment_html(seg.start, seg.text, heading_end, mark))
    if not window.segments:
        out.append("(no stored text)")
    out.append("</div>")
    return "".join(out)


def _segment_html(start: int, text: str, heading_end: int, mark: tuple[int, int] | None) -> str:
    end = start + len(text)
    cuts = {start, end, heading_end}
    if mark:
        cuts |= {min(max(mark[0], start), end), min(max(mark[1], start), end)}
    bounds = sorted(cuts)
    parts: list[str] = []
    in_mark = False
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        piece = html.escape(text[lo - start : hi - start], quote=True)
        if lo < heading_end:
            piece = f'<strong class="rag-heading">{piece}</strong>'
        marked = bool(mark) and mark[0] <= lo and hi <= mark[1]  # type: ignore[index]
        if marked and not in_mark:
            parts.append('<mark data-testid="rag-mark">')
        if in_mark and not marked:
            parts.append("</mark>")
        in_mark = marked
        parts.append(piece)
    if in_mark:
        parts.append("</mark>")
    return "".join(parts)


def open_button(ref: SourceRef, key: str) -> None:
    """A small button that opens `ref` in the source viewer."""
    if st.button("Open in document", key=key, icon=":material/article:", type="tertiary"):
        st.session_state.setdefault(WINDOW_KEY, {}).pop(ref.chunk_id, None)
        source_dialog(ref)


def citation_ref(citation: Citation) -> SourceRef:
    return SourceRef(citation.chunk_id, f"[{citation.marker}]", citation.start, citation.end)


def _grow(chunk_id: str, before: int, after: int) -> None:
    windows = st.session_state.setdefault(WINDOW_KEY, {})
    old_before, old_after = windows.get(chunk_id, (0, 1))
    windows[chunk_id] = (old_before + before, old_after + after)


@st.dialog("Source", width="large")
def source_dialog(ref: SourceRef) -> None:
    """The document around the cited chunk, the quote marked; page earlier/later on demand."""
    settings = state.current_settings()
    before, after = st.session_state.setdefault(WINDOW_KEY, {}).get(ref.chunk_id, (0, 1))
    try:
        window = document_window(state.knowledge_base(settings), ref.chunk_id, before, after)
    except RagError as exc:
        st.error(str(exc))
        return
    if window is None:
        st.warning(
            "This passage is no longer in the knowledge base (its document was re-ingested or "
            "removed). Ask again to get current sources."
        )
        return
    first = window.chunks[0] if window.chunks else None
    st.markdown(f"**{as_text(short_source(window.source))}** {as_text(ref.label)}")
    where = [
        f"chunks {window.first_position + 1}–{window.last_position + 1} of {window.total_chunks}"
    ]
    if first and first.headings:
        where.insert(0, " > ".join(first.headings))
    st.caption(as_text(" · ".join(where)))
    st.button(
        "Earlier text",
        key="src-before",
        icon=":material/arrow_upward:",
        disabled=not window.has_before,
        on_click=_grow,
        args=(ref.chunk_id, PAGE_STEP, 0),
    )
    mark = (ref.start, ref.end) if ref.start is not None and ref.end is not None else None
    st.html(window_html(window, mark))
    st.button(
        "Later text",
        key="src-after",
        icon=":material/arrow_downward:",
        disabled=not window.has_after,
        on_click=_grow,
        args=(ref.chunk_id, 0, PAGE_STEP),
    )
    if mark is None and ref.label.startswith("["):
        st.caption("The quoted words could not be located in this passage; none are marked.")
    st.caption(as_text(window.source))
    _page_image(window, ref, mark)


def _page_image(window: DocumentWindow, ref: SourceRef, mark: tuple[int, int] | None) -> None:
    """For a PDF: the cited page as an image, rendered only when asked for."""
    cited = next((c for c in window.chunks if c.chunk_id == ref.chunk_id), None)
    if cited is None or cited.page is None or not window.source.lower().endswith(".pdf"):
        return
    if not st.toggle(f"Show page {cited.page} as an image", key="src-page-image"):
        return
    from rag_app.ui.pdf_page import page_image

    quote = window.text_at(*mark) if mark else ""
    image = page_image(window.source, cited.page, cited.doc_hash, quote)
    if image is None:
        st.caption("The PDF file has changed or moved since it was ingested: no page image.")
    else:
        st.image(
            image, caption=f"Page {cited.page}" + (" · quote boxed in yellow" if quote else "")
        )
