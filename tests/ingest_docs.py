"""Test documents for the ingestion tests: real PDF/DOCX files built on the fly, and bad inputs."""

from __future__ import annotations

import io
from pathlib import Path


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF with one paragraph of text per page (reportlab)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for text in pages:
        y = 800
        for line in text.split("\n"):
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path


def make_encrypted_pdf(path: Path, text: str, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_suffix(".plain.pdf"), [text])
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password)
    buf = io.BytesIO()
    writer.write(buf)
    plain.unlink()
    path.write_bytes(buf.getvalue())
    return path


def make_docx(
    path: Path, title: str, sections: list[tuple[str, str]], table: list[list[str]]
) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, text in sections:
        document.add_heading(heading, level=2)
        document.add_paragraph(text)
    t = document.add_table(rows=0, cols=len(table[0]))
    for row in table:
        for cell, value in zip(t.add_row().cells, row, strict=True):
            cell.text = value
    document.save(str(path))
    return path


def write_bad_inputs(folder: Path) -> dict[str, str]:
    """Bad files in `folder`; returns file name -> a word the failure reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF")
    make_encrypted_pdf(folder / "locked.pdf", "Secret text inside an encrypted PDF.")
    (folder / "huge.txt").write_text("big file " * 40_000)  # ~360 kB, above a 0.1 MB limit
    # A dangling symlink is what a file deleted between the walk and the read looks like.
    (folder / "vanished.md").symlink_to(folder / "does-not-exist.md")
    return {
        "empty.txt": "empty",
        "binary.txt": "binary",
        "corrupt.pdf": "PDF",
        "locked.pdf": "encrypted",
        "huge.txt": "max_file_mb",
        "vanished.md": "disappeared",
    }
