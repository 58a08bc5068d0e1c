"""Answer candidates: the short spans of the focused passage sentences the model may choose from.

vLLM's structured outputs restrict the `answer` field to these strings (a JSON-schema enum), so a
135M model can only pick a span of the documents (or the abstention phrase) instead of
paraphrasing, repeating the question or copying whole sentences. Greedy decoding over the enum
is a walk down a prefix tree: the model chooses where the answer starts, then where it ends.
"""

from __future__ import annotations

import re
from typing import Any

from rag_app.records import ABSTAIN_PHRASE
from rag_app.words import STOPWORDS, content_words

MAX_SPAN_WORDS = 5
MAX_CANDIDATES = 400
_TOKEN = re.compile(r"\S+")
_EDGE = "\"'()[]{},;:.!?"


def _spans(sentence: str, asked: set[str]) -> list[str]:
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(sentence)]
    words = [sentence[a:b].strip(_EDGE).lower() for a, b in tokens]
    out: list[str] = []
    for i in range(len(tokens)):
        if not words[i] or words[i] in STOPWORDS:
            continue  # answers start with a content word ("1887", "Margaret Ellery")
        for j in range(i, min(i + MAX_SPAN_WORDS, len(tokens))):
            if not words[j] or words[j] in STOPWORDS:
                continue
            text = sentence[tokens[i][0] : tokens[j][1]].strip(_EDGE)
            # A span made only of the question's own words restates the question.
            if text and not set(content_words(text)) <= asked:
                out.append(text)
            if sentence[tokens[j][0] : tokens[j][1]].rstrip()[-1:] in ".;:!?":
                break  # a span never crosses a clause end
    return out


def candidate_spans(question: str, passages: list[dict[str, Any]], cited: bool) -> list[str]:
    """Distinct answer candidates from the prompt's passages (with `[n]` markers when cited)."""
    asked = set(content_words(question))
    seen: dict[str, None] = {}
    for passage in passages:
        for span in _spans(passage["text"], asked):
            seen.setdefault(f"{span} [{passage['n']}]" if cited else span, None)
            if len(seen) >= MAX_CANDIDATES:
                break
    return [*seen, ABSTAIN_PHRASE]
