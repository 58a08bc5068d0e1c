"""Build the binary sample documents (greywater_orchard.docx, tolwen_ferry.pdf) from the text below.

Run: .venv/bin/python samples/build_samples.py   (needs python-docx and reportlab, the dev extra)
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent / "docs"

ORCHARD_TITLE = "Greywater Community Orchard"
ORCHARD = [
    (
        "About the orchard",
        "The Greywater Community Orchard was founded in 2009 on four hectares of former "
        "grazing land beside the village of Greywater. Volunteers planted the first trees in "
        "the winter of 2009 and now care for 340 apple trees and 85 pear trees.",
    ),
    (
        "Harvest",
        "The harvest festival is held on the first Saturday of October. In a good year the "
        "orchard picks about 19 tonnes of fruit. Most of the apples are pressed into juice at "
        "the Millbrook press, and the pears are sold at the village market.",
    ),
]
ORCHARD_VARIETIES = [
    ("Variety", "Fruit", "Trees"),
    ("Carrow Russet", "apple", "150"),
    ("Marrow Gold", "apple", "190"),
    ("Tolwen Blush", "pear", "85"),
]

FERRY_PAGES = [
    (
        "Tolwen Ferry",
        [
            "The Tolwen Ferry links the harbour of Tolwen with the Isle of Carrow. The service is "
            "run by the motor vessel Saltmarsh, which can carry up to 96 passengers and 12 cars.",
            "The crossing takes 14 minutes in calm weather. The Saltmarsh was built in 2004 "
            "and replaced an older ferry called the Curlew.",
        ],
    ),
    (
        "Timetable",
        [
            "In summer (May to September) the ferry makes 11 crossings per day, the first "
            "leaving Tolwen at 07:10.",
            "In winter (October to April) the ferry makes 7 crossings per day. Crossings are "
            "cancelled when the wind is stronger than force 8.",
        ],
    ),
]


def build_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading(ORCHARD_TITLE, level=1)
    for heading, text in ORCHARD:
        document.add_heading(heading, level=2)
        document.add_paragraph(text)
    document.add_heading("Varieties", level=2)
    table = document.add_table(rows=0, cols=3)
    for row in ORCHARD_VARIETIES:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.core_properties.author = "rag_app contributors"
    document.save(str(path))


def build_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    story: list = []
    for number, (heading, paragraphs) in enumerate(FERRY_PAGES):
        if number:
            story.append(PageBreak())
        story.append(Paragraph(heading, styles["Heading1"]))
        story += [Paragraph(p, styles["BodyText"]) for p in paragraphs]
    doc = SimpleDocTemplate(str(path), pagesize=A4, invariant=1, author="rag_app contributors")
    doc.build(story)


if __name__ == "__main__":
    build_docx(HERE / "greywater_orchard.docx")
    build_pdf(HERE / "tolwen_ferry.pdf")
    print("wrote", HERE / "greywater_orchard.docx", HERE / "tolwen_ferry.pdf")
