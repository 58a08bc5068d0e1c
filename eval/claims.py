"""Claims: split an answer into atomic claims; extract the features the offline judge compares."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
# Clause breaks: semicolons, and ", and/but/while/whereas" joining two full clauses.
_CLAUSE_BREAK = re.compile(r";\s+|,\s+(?:and|but|while|whereas|although)\s+")
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d[\d,]*(?:\.\d+)?")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    it its this that these those he she they them his her their there here which who whom whose what
    when where why how do does did has have had not no can could would should will shall may might
    i we you your our my me us than then so such also into about over after before during between
    under very more most some any each other same own only just one s"""
)
NEGATIONS = _wordset("not no never none nobody nothing neither nor without cannot n't")
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve"
_ORDINALS = "zeroth first second third fourth fifth sixth seventh eighth ninth tenth"
NUMBER_WORDS = {w: str(i) for i, w in enumerate(_NUMBER_WORDS.split())}
ORDINALS = {w: str(i) for i, w in enumerate(_ORDINALS.split())}
MONTHS = _wordset(
    "january february march april may june july august september october november december"
)


def strip_markers(text: str) -> str:
    """Remove [n] citation markers so they are never scored as answer words."""
    return _MARKER.sub("", text).strip()


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def split_claims(answer: str, question: str | None = None, short_words: int = 4) -> list[str]:
    """Atomic claims: sentences, then clauses. A short answer (a bare span) becomes one claim
    read together with its question, since "France" alone asserts nothing checkable."""
    text = strip_markers(answer)
    if not text:
        return []
    if question and len(_WORD.findall(text)) <= short_words:
        # Joined with ":" (not "? ") so the answer is not read as a new sentence.
        return [f"{question.strip().rstrip('?')}: {text}"]
    claims: list[str] = []
    for sentence in split_sentences(text):
        parts = [p.strip(" ,;") for p in _CLAUSE_BREAK.split(sentence)]
        # Keep a clause split only when every part is a clause-sized piece (>= 3 words).
        if len(parts) > 1 and all(len(_WORD.findall(p)) >= 3 for p in parts):
            claims.extend(parts)
        else:
            claims.append(sentence)
    return [c for c in claims if _WORD.search(c)]


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def _stem(token: str) -> str:
    # Crude plural/possessive folding: enough for overlap, no lexicon needed.
    token = token.removesuffix("'s")
    if len(token) > 4 and token.endswith("es") and not token.endswith("ses"):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def content_tokens(text: str) -> set[str]:
    return {_stem(w.lower()) for w in words(text) if w.lower() not in STOPWORDS}


def numbers(text: str) -> set[str]:
    """Numbers, number words, ordinals (10th -> 10) and month names, normalised for comparison."""
    found = {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}
    for w in words(text):
        low = w.lower()
        if low in NUMBER_WORDS:
            found.add(NUMBER_WORDS[low])
        elif low in ORDINALS:
            found.add(ORDINALS[low])
        elif low in MONTHS and w[0].isupper():
            found.add(low)
    return found


def entities(text: str) -> set[str]:
    """Capitalised words that are not sentence-initial or stopwords (cheap proper-noun guess)."""
    found: set[str] = set()
    for sentence in split_sentences(text):
        tokens = words(sentence)
        for i, tok in enumerate(tokens):
            initial = i == 0
            if tok[0].isupper() and not initial and tok.lower() not in STOPWORDS:
                found.add(_stem(tok.lower()))
    return found - MONTHS


def negation_count(text: str) -> int:
    lowered = text.lower().replace("n't", " n't")
    return sum(1 for w in re.findall(r"[a-z']+", lowered) if w in NEGATIONS)
