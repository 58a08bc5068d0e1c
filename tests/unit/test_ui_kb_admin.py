"""Knowledge bases from the UI (AppTest): create, switch, delete with confirmation, re-ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.kb import list_kbs
from rag_app.settings import Settings
from rag_app.ui.chat_store import ChatStore, Turn
from rag_app.ui.documents import size_label
from tests.ui_pages import documents_page, unescape

NOTE = b"# Tide tables\n\nHigh tide at Blue Harbor is at 06:40 on Mondays.\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def notices(at: AppTest) -> tuple[list[str], list[str]]:
    return [unescape(s.value) for s in at.main.success], [unescape(e.value) for e in at.main.error]


def create(at: AppTest, name: str) -> AppTest:
    at.text_input(key="new_kb_name").set_value(name)
    return at.button(key="kb-create").click().run()


def test_create_switches_to_the_new_kb_and_refuses_bad_names(settings: Settings) -> None:
    at = create(documents_page(settings), "handbook")
    assert not at.exception
    assert "handbook" in list_kbs(settings)
    assert at.sidebar.selectbox(key="kb_name").value == "handbook"
    ok, _ = notices(at)
    assert any("Created knowledge base handbook" in s for s in ok)
    assert any("Documents in handbook" in unescape(h.value) for h in at.subheader)
    create(at, "../escape")
    _, errors = notices(at)
    assert any("invalid knowledge base name" in e for e in errors), errors
    create(at, "handbook")
    _, errors = notices(at)
    assert any("already exists" in e for e in errors), errors


def test_deleting_the_active_kb_needs_confirmation_and_leaves_ui_usable(
    settings: Settings,
) -> None:
    at = create(documents_page(settings), "notes")
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    ChatStore.for_kb(settings, "notes").create("a chat")
    at.button(key="kb-delete").click().run()
    assert "notes" in list_kbs(settings), "nothing is deleted before confirming"
    assert any("cannot be undone" in unescape(w.value) for w in at.warning)
    at.button(key="kb-delete-yes").click().run()
    assert not at.exception
    assert "notes" not in list_kbs(settings)
    assert not (settings.root / "uploads" / "notes").exists()
    assert not ChatStore.for_kb(settings, "notes").chats()
    assert at.sidebar.selectbox(key="kb_name").value == "default"
    ok, _ = notices(at)
    assert any("Deleted knowledge base notes" in s for s in ok)
    assert not any("tides.md" in s for s in ok), "results of the deleted KB are not shown"
    # The UI keeps working: the chat page answers with a clear message, uploads recreate a KB.
    at.switch_page("views/chat.py").run()
    at.chat_input[0].set_value("Anything?").run()
    assert not at.exception and any("does not exist" in e.value for e in at.error)
    at.switch_page("views/documents.py").run()
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    assert "default" in list_kbs(settings)


def test_keep_it_cancels_the_deletion(settings: Settings) -> None:
    at = create(documents_page(settings), "keepme")
    at.button(key="kb-delete").click().run()
    at.button(key="kb-delete-no").click().run()
    assert "keepme" in list_kbs(settings) and not at.warning


def test_document_table_reingest_and_json_report(settings: Settings) -> None:
    at = documents_page(settings)
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    report = at.get("json")
    assert report, "the per-file ingest report is shown"
    assert '"added": 1' in report[0].proto.body.replace(" ", "").replace('":', '": ')
    table = at.dataframe[0].value
    assert list(table.columns) == ["Document", "Chunks", "Size", "Last ingest"]
    assert table.iloc[0]["Size"] == f"{len(NOTE)} B"
    [b for b in at.button if b.label == "Re-ingest"][0].click().run()
    assert not at.exception
    ok, _ = notices(at)
    assert any("tides.md: re-ingested" in s for s in ok), ok


def test_reingest_of_a_vanished_file_is_refused_with_advice(settings: Settings) -> None:
    at = documents_page(settings)
    at.file_uploader[0].upload("tides.md", NOTE, "text/markdown").run()
    (settings.root / "uploads" / "default" / "tides.md").unlink()
    at.run()
    assert at.dataframe[0].value.iloc[0]["Size"] == "file gone"
    [b for b in at.button if b.label == "Re-ingest"][0].click().run()
    _, errors = notices(at)
    assert any("is gone: remove the document" in e for e in errors), errors


def test_size_labels(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 3 * 1024 * 1024)
    assert size_label(str(big), {}) == "3.0 MB"
    assert size_label(str(tmp_path / "none"), {}) == "file gone"
    assert size_label("upload://kb/a.txt", {"upload://kb/a.txt": 2048}) == "2.0 KB"
    store = ChatStore(tmp_path / "c.sqlite")
    store.append(store.create("t"), Turn("user", "q"))  # a store file exists once used
    assert (tmp_path / "c.sqlite").is_file()
