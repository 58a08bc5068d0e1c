"""PDF page image in the source viewer: pypdfium2 render, the quote boxed, stale files refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingest.load import doc_hash_of
from rag_app.ui.pdf_page import HIGHLIGHT, page_image, quote_boxes

PDF = Path(__file__).resolve().parents[2] / "samples" / "docs" / "tolwen_ferry.pdf"
QUOTE = "The crossing takes 14 minutes in calm weather."


def yellow_pixels(image: object) -> int:
    rgb = image.convert("RGB")  # type: ignore[attr-defined]
    # Black text under the box turns dark yellow; white paper turns light yellow.
    return sum(1 for r, g, b in rgb.getdata() if r > 200 and g > 200 and b < 150)


def test_quote_is_boxed_on_the_page() -> None:
    digest = doc_hash_of(PDF.read_bytes())
    marked = page_image(str(PDF), 1, digest, QUOTE)
    plain = page_image(str(PDF), 1, digest, "words that are not on this page")
    assert marked is not None and plain is not None
    assert marked.size == plain.size and marked.size[0] > 800
    assert yellow_pixels(plain) == 0
    assert yellow_pixels(marked) > 2000


def test_changed_or_missing_file_gives_no_image(tmp_path: Path) -> None:
    copy = tmp_path / "ferry.pdf"
    shutil.copy(PDF, copy)
    assert page_image(str(copy), 1, "0" * 64, QUOTE) is None  # another version than ingested
    assert page_image(str(tmp_path / "gone.pdf"), 1, "", QUOTE) is None
    assert page_image(str(copy), 99, "", QUOTE) is None


def test_quote_match_tolerates_line_breaks() -> None:
    text = "The service is run by the\r\nmotor vessel Saltmarsh."
    assert quote_boxes(text, "run by the motor vessel") == (15, 39)
    assert quote_boxes(text, "") is None
    assert HIGHLIGHT[3] < 255, "the box is translucent: the words stay readable"
