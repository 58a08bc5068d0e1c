"""UI PDF page image: the cited page rendered by pypdfium2, the quoted sentence boxed in yellow.

The page *text* shown in the viewer comes from the stored chunks and is marked by offsets. The
image is an extra: the PDF is re-read from its source path, and only when its bytes still hash
to the ingested document (otherwise the picture could show another version). The text was
extracted by pypdf and pdfium counts characters differently, so offsets do not carry over to
the image: there the quote's words are matched (any whitespace between them) on the cited page
only, which is the one page the offsets already pinned down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.load import doc_hash_of

if TYPE_CHECKING:
    from PIL.Image import Image

SCALE = 1.5  # 108 dpi: legible text, a ~1 MB image for an A4 page
HIGHLIGHT = (255, 214, 0, 110)
MAX_PDF_MB = 200.0


def quote_boxes(text: str, quote: str) -> tuple[int, int] | None:
    """(first, last+1) character indices of `quote` in pdfium's page text, whitespace-tolerant."""
    words = quote.split()
    if not words:
        return None
    found = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return (found.start(), found.end()) if found else None


def line_boxes(
    chars: list[tuple[float, float, float, float]], pad: float = 1.5
) -> list[tuple[float, float, float, float]]:
    """Character boxes (left, bottom, right, top) merged into one box per text line."""
    lines: list[list[float]] = []
    for left, bottom, right, top in chars:
        if right <= left:  # generated characters (line breaks) have no box
            continue
        if lines and abs(lines[-1][1] - bottom) < 3 and left >= lines[-1][0]:
            line = lines[-1]
            line[1], line[2], line[3] = min(line[1], bottom), max(line[2], right), max(line[3], top)
        else:
            lines.append([left, bottom, right, top])
    return [(lt - pad, b - pad, r + pad, t + pad) for lt, b, r, t in lines]


def page_image(source: str, page_no: int, doc_hash: str, quote: str) -> Image | None:
    """The page (1-based) as an image with the quote boxed; None when the file is gone/changed."""
    import pypdfium2 as pdfium
    from PIL import ImageDraw

    path = Path(source)
    if not path.is_file() or path.stat().st_size > MAX_PDF_MB * 1024 * 1024:
        return None
    data = path.read_bytes()
    if doc_hash and doc_hash_of(data) != doc_hash:
        return None
    pdf = pdfium.PdfDocument(data)
    try:
        if not 1 <= page_no <= len(pdf):
            return None
        page = pdf[page_no - 1]
        image = page.render(scale=SCALE).to_pil().convert("RGB")
        textpage = page.get_textpage()
        span = quote_boxes(textpage.get_text_range(), quote)
        if span:
            boxes = [textpage.get_charbox(i) for i in range(*span)]
            height = page.get_size()[1]
            overlay = ImageDraw.Draw(image, "RGBA")  # RGBA drawing blends onto the RGB page
            for left, bottom, right, top in line_boxes(boxes):
                box = (
                    left * SCALE,
                    (height - top) * SCALE,
                    right * SCALE,
                    (height - bottom) * SCALE,
                )
                overlay.rectangle(box, fill=HIGHLIGHT)
        return image
    finally:
        pdf.close()
