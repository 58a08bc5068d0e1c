"""UI documents page: upload and ingest files (per-file results), list documents, remove one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from ingest.uploads import save_upload, upload_dir
from rag_app.errors import RagError
from rag_app.settings import Settings
from rag_app.ui import state
from rag_app.ui.text import as_text, short_source

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from ingest.kb import KnowledgeBase

UPLOADER_ROUND_KEY = "uploader_round"  # bumped after each ingest so the drop zone empties
RESULTS_KEY = "ingest_results"


@dataclass(frozen=True)
class FileResult:
    """What happened to one uploaded file."""

    name: str
    ok: bool
    status: str
    chunks: int = 0


def render_documents_page() -> None:
    """The documents page: drop zone, last ingest results, document list with removal."""
    settings = state.current_settings()
    st.subheader(as_text(f"Documents in {settings.kb}"))
    round_no = st.session_state.setdefault(UPLOADER_ROUND_KEY, 0)
    files = st.file_uploader(
        "Add documents",
        accept_multiple_files=True,
        key=f"uploader-{round_no}",
        help=f"PDF, Word, HTML, Markdown or text; up to {settings.max_upload_mb:g} MB each. "
        "Files are ingested as soon as they are dropped.",
    )
    if files:
        st.session_state[RESULTS_KEY] = ingest_uploads(files, settings)
        st.session_state[UPLOADER_ROUND_KEY] = round_no + 1
        st.rerun()
    _show_results(st.session_state.get(RESULTS_KEY, []))
    _document_list(settings)


def ingest_uploads(files: list[UploadedFile], settings: Settings) -> list[FileResult]:
    """Save and ingest each upload under a progress bar; one bad file never stops the rest."""
    try:
        kb = state.knowledge_base(settings, create=True)
    except RagError as exc:
        return [FileResult(f.name, False, str(exc)) for f in files]
    folder = upload_dir(settings, settings.kb)
    bar = st.progress(0.0, text="Ingesting…")
    results = []
    for i, upload in enumerate(files):
        bar.progress(
            i / len(files), text=as_text(f"Ingesting {upload.name} ({i + 1}/{len(files)})")
        )
        results.append(_ingest_one(upload, folder, kb, settings))
    bar.progress(1.0, text="Done")
    return results


def _ingest_one(
    upload: UploadedFile, folder: Path, kb: KnowledgeBase, settings: Settings
) -> FileResult:
    from ingest.pipeline import ingest_paths

    try:
        path = save_upload(upload.name, upload.getvalue(), folder, settings.max_upload_mb)
        summary = ingest_paths([path], kb)
    except RagError as exc:
        return FileResult(upload.name, False, str(exc))
    if summary.failed or summary.skipped:
        path.unlink(missing_ok=True)  # the upload folder holds only documents in the KB
        issue = (summary.failed or summary.skipped)[0]
        return FileResult(upload.name, False, issue.reason)
    for count, label in (
        (summary.added, "added"),
        (summary.changed, "updated"),
        (summary.unchanged, "already up to date"),
    ):
        if count:
            return FileResult(upload.name, True, label, summary.chunks_written)
    return FileResult(upload.name, False, "no text could be read from it")


def _show_results(results: list[FileResult]) -> None:
    for result in results:
        if result.ok:
            plural = "s" if result.chunks != 1 else ""
            chunks = f" · {result.chunks} chunk{plural}" if result.chunks else ""
            st.success(as_text(f"{result.name}: {result.status}{chunks}"), icon=":material/check:")
        else:
            st.error(as_text(f"{result.name}: {result.status}"), icon=":material/error:")


def _document_list(settings: Settings) -> None:
    try:
        kb = state.knowledge_base(settings)
        sources = kb.sources()
    except RagError:
        sources = []
    if not sources:
        st.caption("No documents yet: drop files above to add them.")
        return
    rows = [
        {
            "Document": short_source(s.source),
            "Chunks": s.chunks,
            "Added": s.ingested_at[:16].replace("T", " "),
        }
        for s in sources
    ]
    total = sum(s.chunks for s in sources)
    plural = "s" if len(sources) != 1 else ""
    st.caption(f"{len(sources)} document{plural} · {total} chunks")
    st.dataframe(rows, hide_index=True, width="stretch")
    _remove_form(kb, [s.source for s in sources], settings)


def _remove_form(kb: KnowledgeBase, sources: list[str], settings: Settings) -> None:
    with st.form("remove", border=False):
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        target = left.selectbox("Remove a document", sources, format_func=short_source)
        if right.form_submit_button("Remove", icon=":material/delete:") and target:
            removed = kb.remove_source(target)
            _delete_uploaded_copy(Path(target), upload_dir(settings, settings.kb))
            notice = FileResult(short_source(target), True, f"removed ({removed} chunks)")
            st.session_state[RESULTS_KEY] = [notice]
            st.rerun()


def _delete_uploaded_copy(source: Path, folder: Path) -> None:
    """Delete the file too when it is our own uploaded copy (never a user's original)."""
    if source.resolve().parent == folder.resolve():
        source.unlink(missing_ok=True)
