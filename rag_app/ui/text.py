"""UI text safety: document and model text is shown as text, never as live Markdown or HTML."""

from __future__ import annotations

import re
from pathlib import Path

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them
# also disarms Streamlit's extras ($math$, :emoji:, :color[..] directives) and raw HTML tags.
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")


def as_text(text: str) -> str:
    """Markdown source that displays `text` literally, keeping its line breaks."""
    escaped = _PUNCT.sub(r"\\\1", text.replace("\r\n", "\n"))
    return "  \n".join(escaped.split("\n"))  # two trailing spaces = hard line break


def as_quote(text: str) -> str:
    """`text` as a literal Markdown block quote (blank lines kept as quote paragraphs)."""
    lines = [as_text(line) for line in text.strip().split("\n")]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def as_quote_with_span(passage: str, span: str) -> str:
    """`passage` as a literal block quote with `span` (the cited words) in bold, when safe.

    Bold is added only where CommonMark honours `**` (see its flanking rules): a span edge that
    is punctuation must touch whitespace or the passage edge; a word edge must not touch a word.
    Otherwise, or if the span spans paragraphs or is not in the passage, the span is quoted alone.
    """
    span = span.strip()
    start = passage.find(span) if span else -1
    if start < 0 or "\n\n" in span:
        return as_quote(span or passage)
    end = start + len(span)
    before = passage[start - 1] if start else " "
    after = passage[end] if end < len(passage) else " "
    left_ok = not before.isalnum() if span[0].isalnum() else before.isspace()
    right_ok = not after.isalnum() if span[-1].isalnum() else after.isspace()
    if not (left_ok and right_ok):
        return as_quote(span)
    marked = as_text(passage[:start]) + "**" + as_text(span) + "**" + as_text(passage[end:])
    return "\n".join(f"> {line}" if line.strip() else ">" for line in marked.strip().split("\n"))


def short_source(source: str) -> str:
    """The file name of a source path (full paths are shown separately, in small print)."""
    return Path(source).name or source


def location(page: int | None, section: str) -> str:
    """'p. 3 · Intro > Setup' style provenance label (empty parts left out)."""
    parts = [f"p. {page}" if page else "", section]
    return " · ".join(p for p in parts if p)
