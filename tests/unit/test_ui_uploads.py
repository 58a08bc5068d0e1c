"""Upload safety: names cannot leave the upload folder, oversized files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.uploads import UploadRejected, safe_filename, save_upload, upload_dir
from rag_app.settings import Settings


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "..\\..\\windows\\system32\\evil.dll",
        "/absolute/path.txt",
        "..",
        ".",
        "",
        "sub/../../x.md",
        "a\x00b.txt",
        "C:\\Users\\me\\notes.md",
        "~/.ssh/authorized_keys",
    ],
)
def test_hostile_names_stay_inside_folder(tmp_path: Path, hostile: str) -> None:
    folder = tmp_path / "uploads"
    saved = save_upload(hostile, b"hello", folder, max_mb=1)
    assert saved.parent == folder.resolve()
    assert saved.read_bytes() == b"hello"
    assert not saved.name.startswith(".")
    # Nothing was written anywhere else under tmp_path.
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == [saved]


def test_safe_filename_keeps_ordinary_names() -> None:
    assert safe_filename("Annual report (2025).pdf") == "Annual report (2025).pdf"
    assert safe_filename("café notes.md") == "café notes.md"
    assert safe_filename("x<script>.html") == "x_script_.html"


def test_long_names_are_cut_keeping_extension() -> None:
    name = safe_filename("a" * 500 + ".docx")
    assert len(name) <= 120
    assert name.endswith(".docx")


def test_oversized_upload_refused_with_clear_message(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    with pytest.raises(
        UploadRejected, match=r"big\.pdf is 2\.0 MB; uploads are limited to 1\.5 MB"
    ):
        save_upload("big.pdf", b"x" * (2 * 1024 * 1024), folder, max_mb=1.5)
    assert not folder.exists() or not any(folder.iterdir())


def test_reupload_replaces_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    save_upload("doc.txt", b"old", folder, max_mb=1)
    saved = save_upload("doc.txt", b"new", folder, max_mb=1)
    assert saved.read_bytes() == b"new"
    assert [p.name for p in folder.iterdir()] == ["doc.txt"]


def test_upload_dir_is_per_knowledge_base_under_data_dir(settings: Settings) -> None:
    assert upload_dir(settings, "team") == settings.root / "uploads" / "team"
    assert upload_dir(settings, "../x").parent == settings.root / "uploads"
