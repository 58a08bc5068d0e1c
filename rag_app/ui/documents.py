"""UI documents page: manage KBs; upload and ingest files (per-file report); list, re-ingest and
remove documents.

Uploads into a file KB are saved in the KB's upload folder; into a database KB (store =
postgres) their bytes go to the database (ingest/pg_uploads.py, source `upload://KB/NAME`), as
the API's do, so a UI on another host and every API replica can list, re-ingest and remove them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from ingest.pg_db import in_database
from ingest.uploads import UPLOAD_SCHEME, check_size, save_upload, upload_dir, upload_source
from rag_app.errors import RagError
from rag_app.settings import Settings
from rag_app.ui import state
from rag_app.ui.kb_admin import render_kb_admin
from rag_app.ui.text import as_text, short_source

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from ingest.kb import KnowledgeBase
    from ingest.pipeline import IngestSummary

UPLOADER_ROUND_KEY = "uploader_round"  # bumped after each ingest so the drop zone empties
RESULTS_KEY = "ingest_results"  # (kb, results): shown only while that KB is the active one


@dataclass(frozen=True)
class FileResult:
    """What happened to one uploaded file."""

    name: str
    ok: bool
    status: str
    chunks: int = 0
    report: dict[str, Any] = field(default_factory=dict)  # the IngestSummary, as --json prints


def render_documents_page() -> None:
    """The documents page: drop zone, last ingest results, document list with removal."""
    settings = state.current_settings()
    render_kb_admin(settings)
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
        st.session_state[RESULTS_KEY] = (settings.kb, ingest_uploads(files, settings))
        st.session_state[UPLOADER_ROUND_KEY] = round_no + 1
        st.rerun()
    kb_name, results = st.session_state.get(RESULTS_KEY, ("", []))
    _show_results(results if kb_name == settings.kb else [])
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

    if in_database(settings):
        return _ingest_into_database(upload, kb, settings)
    try:
        path = save_upload(upload.name, upload.getvalue(), folder, settings.max_upload_mb)
        summary = ingest_paths([path], kb)
    except RagError as exc:
        return FileResult(upload.name, False, str(exc))
    if summary.failed or summary.skipped or summary.duplicates:
        path.unlink(missing_ok=True)  # the upload folder holds only documents in the KB
    return file_result(upload.name, summary)


def _ingest_into_database(
    upload: UploadedFile, kb: KnowledgeBase, settings: Settings
) -> FileResult:
    from ingest.pg_uploads import keep_upload
    from ingest.pipeline import ingest_blob

    try:
        check_size(upload.name, upload.size, settings.max_upload_mb)
        source, data = upload_source(kb.name, upload.name), upload.getvalue()
        summary = ingest_blob(source, data, kb)
        if summary.added or summary.changed or summary.unchanged:  # only documents in the KB
            keep_upload(settings, kb.name, source, data)
    except RagError as exc:
        return FileResult(upload.name, False, str(exc))
    return file_result(upload.name, summary)


def file_result(name: str, summary: IngestSummary) -> FileResult:
    """One file's line in the report: what happened, in words, with the run's full summary."""
    report = summary.model_dump()
    if summary.failed or summary.skipped:
        issue = (summary.failed or summary.skipped)[0]
        return FileResult(name, False, issue.reason, report=report)
    if summary.duplicates:  # not an error: the content is there, under its first path
        reason = summary.duplicates[0].reason  # the full path: the names are often the same
        return FileResult(name, True, f"{reason} (not added again)", report=report)
    for count, label in (
        (summary.added, "added"),
        (summary.changed, "updated"),
        (summary.unchanged, "already up to date"),
    ):
        if count:
            return FileResult(name, True, label, summary.chunks_written, report)
    return FileResult(name, False, "no text could be read from it", report=report)


def _show_results(results: list[FileResult]) -> None:
    for result in results:
        if result.ok:
            plural = "s" if result.chunks != 1 else ""
            chunks = f" · {result.chunks} chunk{plural}" if result.chunks else ""
            st.success(as_text(f"{result.name}: {result.status}{chunks}"), icon=":material/check:")
        else:
            st.error(as_text(f"{result.name}: {result.status}"), icon=":material/error:")
    reports = {r.name: r.report for r in results if r.report}
    if reports:
        with st.expander("Ingest report (as `rag ingest --json`)"):
            st.json(reports, expanded=2)


def size_label(source: str, kept: dict[str, int]) -> str:
    """The source's size now: its kept upload's, else its file's ('file gone' when it was moved
    or deleted since ingest)."""
    try:
        size = float(kept[source] if source in kept else Path(source).stat().st_size)
    except OSError:
        return "file gone"
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _document_list(settings: Settings) -> None:
    try:
        kb = state.knowledge_base(settings)
        sources = kb.sources()
    except RagError:
        sources = []
    if not sources:
        st.caption("No documents yet: drop files above to add them.")
        return
    if in_database(settings):
        from ingest.pg_uploads import upload_sizes

        kept = upload_sizes(settings, kb.name)
    else:
        kept = {}
    rows = [
        {
            "Document": short_source(s.source),
            "Chunks": s.chunks,
            "Size": size_label(s.source, kept),
            "Last ingest": s.ingested_at[:16].replace("T", " "),
        }
        for s in sources
    ]
    total = sum(s.chunks for s in sources)
    plural = "s" if len(sources) != 1 else ""
    st.caption(f"{len(sources)} document{plural} · {total} chunk{'s' if total != 1 else ''}")
    st.dataframe(rows, hide_index=True, width="stretch")
    _document_actions(kb, [s.source for s in sources], settings)


def _document_actions(kb: KnowledgeBase, sources: list[str], settings: Settings) -> None:
    with st.form("remove", border=False):
        left, mid, right = st.columns([4, 1.3, 1.2], vertical_alignment="bottom")
        target = left.selectbox("Document", sources, format_func=short_source)
        again = mid.form_submit_button("Re-ingest", icon=":material/refresh:")
        remove = right.form_submit_button("Remove", icon=":material/delete:")
    if target and again:
        st.session_state[RESULTS_KEY] = (settings.kb, [reingest(kb, target)])
        st.rerun()
    if target and remove:
        removed = kb.remove_source(target)
        _delete_uploaded_copy(target, settings)
        notice = FileResult(short_source(target), True, f"removed ({removed} chunks)")
        st.session_state[RESULTS_KEY] = (settings.kb, [notice])
        st.rerun()


def reingest(kb: KnowledgeBase, source: str) -> FileResult:
    """Read, chunk and embed one document again from its file, even if it did not change."""
    from ingest.pipeline import ingest_blob, ingest_paths

    name = short_source(source)
    data = None
    if source.startswith(UPLOAD_SCHEME):
        from ingest.pg_uploads import upload_bytes

        data = upload_bytes(kb.settings, kb.name, source)
    if data is None and not Path(source).is_file():
        return FileResult(name, False, f"{source} is gone: remove the document, or upload it again")
    kb.remove_source(source)  # else an unchanged file is skipped as "already up to date"
    try:
        summary = (
            ingest_blob(source, data, kb) if data is not None else ingest_paths([Path(source)], kb)
        )
    except RagError as exc:
        return FileResult(name, False, str(exc))
    result = file_result(name, summary)
    status = "re-ingested" if result.ok else f"{result.status} (no longer in the knowledge base)"
    return FileResult(name, result.ok, status, result.chunks, result.report)


def _delete_uploaded_copy(source: str, settings: Settings) -> None:
    """Delete our own copy of an upload too (never a user's original)."""
    if source.startswith(UPLOAD_SCHEME):
        from ingest.pg_uploads import forget_upload

        forget_upload(settings, settings.kb, source)
        return
    path, folder = Path(source), upload_dir(settings, settings.kb)
    if path.resolve().parent == folder.resolve():
        path.unlink(missing_ok=True)
