"""UI text safety: document text renders literally, never as live HTML or Markdown."""

from __future__ import annotations

import re

import pytest

from rag_app.ui.text import as_quote, as_quote_with_span, as_text, location, short_source

# After escaping, no markup character may appear without a backslash in front of it.
UNESCAPED = re.compile(r"(?<!\\)[<>\[\]*_`$:#|!]")


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "**bold** _it_ `code` # heading",
        "[click](javascript:alert(1)) ![img](http://evil/x.png)",
        "$x^2$ :red[alert] :smile:",
        "| a | b |\n|---|---|",
    ],
)
def test_markup_is_escaped(text: str) -> None:
    escaped = as_text(text)
    assert not UNESCAPED.search(escaped)
    # Removing the escapes gives back the original characters (the user sees the real text).
    assert re.sub(r"\\(.)", r"\1", escaped).replace("  \n", "\n") == text


def test_line_breaks_are_kept() -> None:
    assert as_text("one\ntwo") == "one  \ntwo"


def test_quote_prefixes_every_line() -> None:
    quoted = as_quote("first <b>\n\nsecond")
    assert quoted.splitlines() == ["> first \\<b\\>", ">", "> second"]


def test_provenance_labels() -> None:
    assert short_source("/data/uploads/kb/report.pdf") == "report.pdf"
    assert location(3, "Intro > Setup") == "p. 3 · Intro > Setup"
    assert location(None, "") == ""


def test_cited_span_is_bold_inside_its_passage() -> None:
    passage = "Built in 1874.\nThe light <b>flashes</b> twice."
    quoted = as_quote_with_span(passage, "The light <b>flashes")
    assert quoted.splitlines() == [
        "> Built in 1874\\.  ",
        "> **The light \\<b\\>flashes**\\<\\/b\\> twice\\.",
    ]


def test_span_ending_in_punctuation_is_bold_when_followed_by_space() -> None:
    quoted = as_quote_with_span("It opened in 1931. Today it is green.", "It opened in 1931.")
    assert quoted == "> **It opened in 1931\\.** Today it is green\\."


@pytest.mark.parametrize("span", ["uilt in", "in 1874 (", "not in the passage", ""])
def test_unsafe_or_missing_span_falls_back_to_plain_quote(span: str) -> None:
    quoted = as_quote_with_span("Built in 1874 (1874).", span)
    assert "**" not in quoted and quoted.startswith(">")
