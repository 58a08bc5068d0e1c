"""Load: one file on disk -> a LoadedDoc (plain text + sections with page/heading provenance)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag_app.errors import IngestError


@dataclass(frozen=True)
class Section:
    """A span of the document text that chunks never cross (a heading's section or a PDF page)."""

    start: int
    end: int
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass
class LoadedDoc:
    """A document's text as the chunker sees it; every offset points into `text`."""

    source: str
    text: str
    doc_hash: str
    sections: list[Section] = field(default_factory=list)


class _Builder:
    """Appends blocks of text, remembering where each heading section starts and ends."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.sections: list[Section] = []
        self.stack: list[tuple[int, str]] = []  # (level, heading) outermost first
        self.section_start = 0
        self.page: int | None = None

    def close_section(self) -> None:
        if self.length > self.section_start:
            heads = tuple(h for _, h in self.stack)
            self.sections.append(Section(self.section_start, self.length, self.page, heads))
        self.section_start = self.length

    def heading(self, level: int, text: str) -> None:
        self.close_section()
        self.stack = [(lvl, h) for lvl, h in self.stack if lvl < level] + [(level, text)]
        self.add(text)

    def new_page(self, page: int) -> None:
        self.close_section()
        self.page = page

    def add(self, block: str) -> None:
        block = block.strip()
        if not block:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
            if self.section_start == self.length - 2:  # a section starts at its first block
                self.section_start = self.length
        self.parts.append(block)
        self.length += len(block)

    def build(self) -> tuple[str, list[Section]]:
        self.close_section()
        return "".join(self.parts), self.sections


MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def decode_text(data: bytes) -> str:
    """Bytes -> str: UTF-8 first, else charset-normalizer's best guess; binary is refused."""
    if b"\x00" in data[:8192]:
        raise IngestError("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise IngestError("undecodable text: not UTF-8 and no other encoding fits")
    best = min(matches, key=lambda m: m.chaos)
    # Short Western texts fit several code pages about equally; windows-1252 is by far the most
    # common legacy one, so it wins near-ties (else "crème" comes back as "crčme").
    western = [m for m in matches if m.encoding == "cp1252" and m.chaos <= best.chaos + 0.1]
    return str(western[0] if western else best)


def _load_markdown(data: bytes) -> tuple[str, list[Section]]:
    b = _Builder()
    paragraph: list[str] = []
    in_fence = False
    for line in decode_text(data).splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else MD_HEADING.match(line)
        if match or (not line.strip() and not in_fence):
            b.add("\n".join(paragraph))
            paragraph = []
            if match:
                b.heading(len(match.group(1)), match.group(2))
            continue
        paragraph.append(line.rstrip())
    b.add("\n".join(paragraph))
    return b.build()


def _load_text(data: bytes) -> tuple[str, list[Section]]:
    b = _Builder()
    for block in re.split(r"\n\s*\n", decode_text(data).replace("\r\n", "\n")):
        b.add(block)
    return b.build()


HTML_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "tr", "dt", "dd"]


def _load_html(data: bytes) -> tuple[str, list[Section]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    b = _Builder()
    for el in soup.find_all(HTML_BLOCKS):
        if el.find_parent(HTML_BLOCKS) is not None:
            continue  # nested block: its text is part of the outer block
        if el.name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])]
            text = " | ".join(c for c in cells if c)
        else:
            text = " ".join(el.get_text(" ", strip=True).split())
        if el.name in HTML_BLOCKS[:6]:
            b.heading(int(el.name[1]), text)
        else:
            b.add(text)
    if not b.parts:  # no block tags at all: take the body text
        b.add(soup.get_text("\n", strip=True))
    return b.build()


def _load_pdf(data: bytes) -> tuple[str, list[Section]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("encrypted PDF: decrypt it first (no password support)")
        b = _Builder()
        for number, page in enumerate(reader.pages, start=1):
            b.new_page(number)
            b.add(page.extract_text() or "")
        return b.build()
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"corrupt or unreadable PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises many types on broken files; report, don't abort
        if "crypt" in str(exc).lower() or "password" in str(exc).lower():
            raise IngestError(f"encrypted PDF: {exc}") from exc
        raise IngestError(f"corrupt or unreadable PDF: {type(exc).__name__}: {exc}") from exc


def _load_docx(data: bytes) -> tuple[str, list[Section]]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zip/xml/value errors on broken files
        raise IngestError(f"corrupt or unreadable .docx: {type(exc).__name__}: {exc}") from exc
    b = _Builder()
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                b.add(" | ".join(cell.text.strip() for cell in row.cells))
            continue
        assert isinstance(item, Paragraph)
        style = item.style.name if item.style is not None else ""
        level = re.fullmatch(r"Heading (\d)", style or "")
        if level or style == "Title":
            b.heading(int(level.group(1)) if level else 1, item.text.strip())
        else:
            b.add(item.text)
    return b.build()


def _record_line(record: object) -> str:
    if isinstance(record, dict):
        return "; ".join(f"{k}: {v}" for k, v in record.items())
    return json.dumps(record, ensure_ascii=False) if not isinstance(record, str) else record


def _load_csv(data: bytes) -> tuple[str, list[Section]]:
    rows = list(csv.DictReader(io.StringIO(decode_text(data))))
    b = _Builder()
    b.add("\n".join(_record_line(row) for row in rows))
    return b.build()


def _load_json(data: bytes) -> tuple[str, list[Section]]:
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise IngestError(f"invalid JSON: {exc}") from exc
    b = _Builder()
    if isinstance(value, list):
        b.add("\n".join(_record_line(item) for item in value))
    else:
        b.add(json.dumps(value, indent=1, ensure_ascii=False))
    return b.build()


LOADERS: dict[str, Callable[[bytes], tuple[str, list[Section]]]] = {
    ".txt": _load_text,
    ".text": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".csv": _load_csv,
    ".json": _load_json,
}


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def doc_hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path, max_mb: float) -> bytes:
    """Read a file, turning every OS-level problem into an IngestError naming the cause."""
    try:
        size = path.stat().st_size
        if size > max_mb * 1024 * 1024:
            raise IngestError(
                f"file is {size / 1048576:.1f} MB, above max_file_mb={max_mb:g} "
                "(raise RAG_MAX_FILE_MB to ingest it)"
            )
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise IngestError(
            "file disappeared before it could be read (deleted during ingest)"
        ) from exc
    except IsADirectoryError as exc:
        raise IngestError("is a directory, not a file") from exc
    except PermissionError as exc:
        raise IngestError("permission denied") from exc
    if not data.strip():
        raise IngestError("empty file")
    return data


def parse_bytes(source: str, suffix: str, data: bytes) -> LoadedDoc:
    """Run the loader for `suffix`; an empty result is an error, never a zero-chunk document."""
    loader = LOADERS.get(suffix.lower())
    if loader is None:
        raise IngestError(f"unsupported file type {suffix or '(none)'!r}")
    text, sections = loader(data)
    if not text.strip():
        raise IngestError("no text could be extracted (scanned PDF or empty document?)")
    return LoadedDoc(source=source, text=text, doc_hash=doc_hash_of(data), sections=sections)


def load_text_record(source: str, text: str) -> LoadedDoc:
    """A (source id, text) record from ingest_texts, treated like a .txt file."""
    data = text.encode("utf-8")
    if not text.strip():
        raise IngestError("empty text")
    text_out, sections = _load_text(data)
    return LoadedDoc(source=source, text=text_out, doc_hash=doc_hash_of(data), sections=sections)
