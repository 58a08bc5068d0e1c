"""Documents page through Streamlit's AppTest: upload + ingest, per-file results, list, remove."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ingest.kb import open_kb
from rag_app.settings import Settings
from tests.fakes import HashingEmbeddings
from tests.ui_pages import documents_page, unescape

NOTE = b"# Tide tables\n\nHigh tide at Blue Harbor is at 06:40 on Mondays.\n"


def messages(at: AppTest) -> tuple[list[str], list[str]]:
    """Per-file results on the page itself; the sidebar's model-server status is not one of them."""
    return [unescape(s.value) for s in at.main.success], [unescape(e.value) for e in at.main.error]


def test_upload_ingests_and_lists_document(settings: Settings) -> None:
    at = documents_page(settings)
    assert any("No documents yet" in c.value for c in at.caption)
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    assert not at.exception
    ok, errors = messages(at)
    assert errors == [] and len(ok) == 1 and ok[0].startswith("tides.md: added · 1 chunk"), ok
    table = at.dataframe[0].value
    assert list(table["Document"]) == ["tides.md"] and table["Chunks"][0] >= 1
    # The file landed in the KB's upload folder and is searchable.
    kb = open_kb(settings.kb, settings=settings, embeddings=HashingEmbeddings())
    [info] = kb.sources()
    assert Path(info.source) == settings.root / "uploads" / "default" / "tides.md"
    assert kb.keyword_search("high tide Mondays", k=1)


def test_corrupt_and_unsupported_files_fail_with_reasons_others_succeed(settings: Settings) -> None:
    at = documents_page(settings)
    uploader = at.file_uploader[0]
    uploader.upload("broken.pdf", b"%PDF-1.7\nthis is not really a pdf", "application/pdf")
    uploader.upload("tides.md", NOTE, "text/markdown")
    at.run()
    assert not at.exception
    ok, errors = messages(at)
    assert len(errors) == 1 and errors[0].startswith("broken.pdf: "), errors
    assert len(errors[0]) > len("broken.pdf: ") + 5, "the failure carries a reason"
    assert len(ok) == 1 and "tides.md" in ok[0]
    assert list(at.dataframe[0].value["Document"]) == ["tides.md"]
    assert not (settings.root / "uploads" / "default" / "broken.pdf").exists()


def test_upload_of_content_already_in_the_kb_is_reported_not_added(settings: Settings) -> None:
    at = documents_page(settings)
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    at.file_uploader[0].upload("tides copy.md", NOTE, "text/markdown").run()
    assert not at.exception
    ok, errors = messages(at)
    folder = settings.root / "uploads" / "default"
    assert errors == [] and ok == [
        f"tides copy.md: already in the KB as {folder / 'tides.md'} (not added again)"
    ]
    assert list(at.dataframe[0].value["Document"]) == ["tides.md"]
    assert not (folder / "tides copy.md").exists()


def test_oversized_upload_is_refused_with_message(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_upload_mb=0.001)
    at = documents_page(settings)
    at.file_uploader[0].upload("big.txt", b"word " * 1000, "text/plain").run()
    _, errors = messages(at)
    assert len(errors) == 1 and "uploads are limited to 0.001 MB" in errors[0], errors
    assert not (settings.root / "uploads" / "default" / "big.txt").exists()


def test_hostile_file_name_stays_in_upload_folder(settings: Settings) -> None:
    at = documents_page(settings)
    at.file_uploader[0].upload("../../escape.md", NOTE, "text/markdown").run()
    assert not at.exception
    assert not (settings.root / "escape.md").exists()
    assert (settings.root / "uploads" / "default" / "escape.md").is_file()


def test_remove_document(settings: Settings) -> None:
    at = documents_page(settings)
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    remove = [b for b in at.button if b.label == "Remove"]
    assert remove, [b.label for b in at.button]
    remove[0].click().run()
    assert not at.exception
    ok, _ = messages(at)
    assert any("removed" in s for s in ok), ok
    assert any("No documents yet" in c.value for c in at.caption)
    assert not (settings.root / "uploads" / "default" / "tides.md").exists()
