"""Uploads: save files sent through the UI into the knowledge base's upload folder, safely."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path

from rag_app.errors import IngestError
from rag_app.settings import Settings

MAX_NAME_CHARS = 120
# The source of a document uploaded into a database-backed KB (store = postgres): its bytes live
# in the database, not in one replica's data dir, so the source names no local file.
UPLOAD_SCHEME = "upload://"
# Anything outside this set becomes "_": no separators, no shell or markup characters.
UNSAFE_CHARS = re.compile(r"[^\w.\- ()]+")


class UploadRejected(IngestError):
    """An upload was refused (too large, or unusable name); the message says why and what to do."""


def upload_dir(settings: Settings, kb: str) -> Path:
    """Folder holding the files uploaded into knowledge base `kb` (its sources point here)."""
    return settings.root / "uploads" / safe_filename(kb)


def upload_source(kb: str, filename: str) -> str:
    """`upload://KB/NAME`: the same source on every replica (Path(source).name is the file)."""
    return f"{UPLOAD_SCHEME}{safe_filename(kb)}/{safe_filename(filename)}"


def safe_filename(filename: str) -> str:
    """A plain file name that cannot leave its folder: last path part, no control or odd chars."""
    # Browsers send only a base name, but a hostile client can send anything: take the last
    # component for both separators, so "../../x" and "C:\\x" both end up as plain names.
    name = re.split(r"[\\/]", filename)[-1]
    name = unicodedata.normalize("NFKC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = UNSAFE_CHARS.sub("_", name).strip(" .")  # no hidden files, no "." / ".."
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = ext[:16] if dot else ""
        name = (stem if dot else name)[: MAX_NAME_CHARS - len(keep) - 1] + (dot + keep)
    return name or "upload"


def check_size(filename: str, size: int, max_mb: float) -> None:
    """Refuse files over `max_mb` megabytes with one clear line."""
    if size > max_mb * 1024 * 1024:
        raise UploadRejected(
            f"{filename} is {size / 1024 / 1024:.1f} MB; uploads are limited to {max_mb:g} MB "
            "(setting max_upload_mb / RAG_MAX_UPLOAD_MB)"
        )


def save_upload(filename: str, data: bytes, folder: Path, max_mb: float) -> Path:
    """Write `data` as `folder/<safe name>` atomically and return the path.

    A file of the same name is replaced: re-uploading a changed document updates it in place,
    and ingestion sees it as changed rather than as a second copy.
    """
    check_size(filename, len(data), max_mb)
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_filename(filename)).resolve()
    if target.parent != folder:  # belt and braces: safe_filename already forbids this
        raise UploadRejected(f"{filename!r}: file name points outside the upload folder")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
