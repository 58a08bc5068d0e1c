"""Unit tests for ingest.load and ingest.walk: loaders, sections and reported bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.load import decode_text, parse_bytes, read_bytes
from ingest.walk import walk_paths
from rag_app.errors import IngestError
from tests.ingest_docs import make_docx, make_pdf, write_bad_inputs


def load(path: Path):  # noqa: ANN201 - test helper
    return parse_bytes(str(path), path.suffix, read_bytes(path, 50))


def section_texts(doc) -> list[tuple[tuple[str, ...], str]]:  # noqa: ANN001
    return [(s.headings, doc.text[s.start : s.end]) for s in doc.sections]


def test_markdown_headings_make_sections(tmp_path: Path) -> None:
    md = tmp_path / "a.md"
    md.write_text(
        "# Title\nIntro text.\n\n## Part one\nAlpha.\n\n### Deep\nBeta.\n\n## Part two\nGamma.\n"
    )
    doc = load(md)
    assert section_texts(doc) == [
        (("Title",), "Title\n\nIntro text."),
        (("Title", "Part one"), "Part one\n\nAlpha."),
        (("Title", "Part one", "Deep"), "Deep\n\nBeta."),
        (("Title", "Part two"), "Part two\n\nGamma."),
    ]


def test_markdown_code_fence_is_not_a_heading(tmp_path: Path) -> None:
    md = tmp_path / "code.md"
    md.write_text("# Real\n\n```\n# not a heading\n```\n")
    assert [s.headings for s in load(md).sections] == [("Real",)]


def test_html_headings_tables_and_no_scripts(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>T</title><script>var x = 'hidden';</script></head><body>"
        "<h1>Top</h1><p>First <b>para</b>.</p><h2>Sub</h2><table><tr><th>k</th><td>v</td></tr>"
        "</table><script>alert('no')</script></body></html>"
    )
    doc = load(page)
    assert "hidden" not in doc.text and "alert" not in doc.text
    assert section_texts(doc) == [
        (("Top",), "Top\n\nFirst para ."),
        (("Top", "Sub"), "Sub\n\nk | v"),
    ]


def test_pdf_sections_are_pages(tmp_path: Path) -> None:
    doc = load(make_pdf(tmp_path / "two.pdf", ["Page one text.", "Page two text."]))
    assert [(s.page, doc.text[s.start : s.end]) for s in doc.sections] == [
        (1, "Page one text."),
        (2, "Page two text."),
    ]


def test_docx_heading_styles_and_tables(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path / "d.docx", "Report", [("Intro", "Hello there.")], [["a", "b"], ["1", "2"]]
    )
    doc = load(path)
    assert section_texts(doc) == [
        (("Report",), "Report"),
        (("Report", "Intro"), "Intro\n\nHello there.\n\na | b\n\n1 | 2"),
    ]


def test_csv_and_json_become_records(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("name,age\nAda,36\nAlan,41\n")
    (tmp_path / "t.json").write_text(json.dumps([{"name": "Ada"}, {"name": "Alan"}]))
    assert load(tmp_path / "t.csv").text == "name: Ada; age: 36\nname: Alan; age: 41"
    assert load(tmp_path / "t.json").text == "name: Ada\nname: Alan"


def test_non_utf8_text_is_detected_and_decoded(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    sentence = "Café crème brûlée à la française, déjà vu, naïve façade, garçon."
    path.write_bytes(sentence.encode("cp1252"))
    assert load(path).text == sentence


@pytest.mark.parametrize("data", [b"\x00\x01\x02binary", b"abc\x00def"])
def test_binary_is_refused(data: bytes) -> None:
    with pytest.raises(IngestError, match="binary"):
        decode_text(data)


def test_each_bad_input_has_a_reason(tmp_path: Path) -> None:
    expected = write_bad_inputs(tmp_path)
    for name, word in expected.items():
        path = tmp_path / name
        with pytest.raises(IngestError, match=word):
            parse_bytes(str(path), path.suffix, read_bytes(path, max_mb=0.1))


def test_walk_reports_unknown_types_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\ntext")
    (tmp_path / "b.xyz").write_text("?")
    (tmp_path / ".hidden.md").write_text("secret")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("c")
    walk = walk_paths([tmp_path, tmp_path / "nope"], exclude=["sub/*"])
    assert [p.name for p in walk.files] == ["a.md"]
    assert [(Path(s).name, "unsupported" in r) for s, r in walk.skipped] == [("b.xyz", True)]
    assert walk.missing == [(str(tmp_path / "nope"), "path does not exist")]
    assert [p.name for p in walk_paths([tmp_path], include=["*.txt"]).files] == ["c.txt"]
