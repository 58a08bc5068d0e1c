"""Words: the tokenizer and stopword list shared by keyword search (ingest) and answering."""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORD_TEXT = """a an the of in on at to for from by with and or but is are was were be been
being it its this that these those as into than then there their they he she his her him we our
i do does did has have had not no so such which who whom what when where why how also can could
would should will may might must about over under after before during between you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def content_words(text: str) -> list[str]:
    """Lower-cased words without stopwords (falls back to all words for stopword-only text)."""
    words = [w.lower() for w in WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS]
    return kept or words
