"""Derived answers: a difference or an earlier/later choice computed from what passages quote.

Used only when the question clearly names the two things compared ("How many metres longer is
A than B?", "Which was completed first, A or B?") and the observed passages give exactly one
value for each; the arithmetic goes through the calculator's safe evaluator, never eval.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag_app.agent.tools import evaluate_arithmetic, format_number
from rag_app.answering.form import COMPARATIVES, THOUSANDS, numbers_in, options_in
from rag_app.answering.verify import split_sentences
from rag_app.records import Hit
from rag_app.words import STOPWORDS, content_words

# The words a passage uses for the quantity a comparative compares ("longer" -> "275 metres
# long", "Length | 275 metres"). Comparatives without one here ("more") are not derived.
ATTRIBUTES = {
    "longer": ("long", "length"),
    "shorter": ("long", "length", "short"),
    "taller": ("tall", "height", "high"),
    "higher": ("high", "height", "tall"),
    "wider": ("wide", "width"),
    "narrower": ("wide", "width", "narrow"),
    "deeper": ("deep", "depth"),
    "heavier": ("heavy", "weight", "weighs"),
}
THAN = re.compile(
    rf"\bhow (?:many|much)\s+(?:(?P<unit>\w+)\s+)?(?P<cmp>{COMPARATIVES})\s+"
    r"(?:is|was|are|were)\s+(?P<a>.+?)\s+than\s+(?P<b>.+?)[?.!]*$",
    re.I,
)
SMALLER = {"shorter", "narrower"}  # the comparatives of ATTRIBUTES that pick the smaller value
EARLIER = {"first", "earlier", "earliest", "older", "oldest", "sooner"}
LATER = {"last", "later", "latest", "newer", "newest", "recent"}
YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")


@dataclass(frozen=True)
class Derived:
    """An answer the code worked out from quoted facts, with the passages and values it used."""

    text: str
    cited: list[tuple[int, str]]  # (hit index, the value quoted there) for each fact used
    calculation: tuple[str, str] | None  # (expression, result) for a difference
    note: str


def _about(hit: Hit, name: str, other: str) -> bool:
    """The passage is about `name` (all its words, headings included) and not about `other`."""
    words = set(content_words(" ".join([*hit.chunk.headings, hit.chunk.text])))
    mine, theirs = set(content_words(name)), set(content_words(other))
    return mine <= words and not (theirs - mine <= words)


Pick = Callable[[list[re.Match[str]], list[re.Match[str]]], str | None]


def _after(cues: list[re.Match[str]], values: list[re.Match[str]]) -> str | None:
    """The first value after the first cue word (else the last before it): "began in 1871
    and the tower was completed in 1874" -> 1874 for "completed"."""
    at = cues[0].start()
    after = [v for v in values if v.start() > at]
    before = [v for v in values if v.start() < at]
    if after:
        return after[0].group("value")
    return before[-1].group("value") if before else None


def _nearest(cues: list[re.Match[str]], values: list[re.Match[str]]) -> str | None:
    """The value closest to a cue word, before or after it: "is 275 metres long, with 21
    arches" -> 275 metres for "long"."""

    def gap(value: re.Match[str]) -> int:
        return min(
            c.start() - value.end() if value.end() <= c.start() else value.start() - c.end()
            for c in cues
        )

    return min(values, key=gap).group("value")


def _values(
    hits: list[Hit],
    name: str,
    other: str,
    cue: set[str],
    find: re.Pattern[str],
    pick: Pick = _after,
) -> dict[str, int]:
    """value -> hit index, over the sentences about `name` that hold a cue word and a value
    (`find`); `pick` chooses among a sentence's values by where its cue words are."""
    found: dict[str, int] = {}
    for i, hit in enumerate(hits):
        if not _about(hit, name, other):
            continue
        for sentence in split_sentences(hit.chunk.text):
            sentence = THOUSANDS.sub("", sentence)
            words = re.finditer(r"\w+", sentence)
            cues = [m for m in words if m.group().lower().startswith(tuple(cue))]
            values = list(find.finditer(sentence))
            value = pick(cues, values) if cues and values else None
            if value is not None:
                found.setdefault(value, i)
    return found


def derive_difference(question: str, hits: list[Hit]) -> Derived | None:
    """'How many UNIT COMPARATIVE is A than B?' -> value(A) - value(B), each quoted once."""
    match = THAN.search(question.strip())
    if match is None or not match.group("unit"):
        return None
    cue = set(ATTRIBUTES.get(match.group("cmp").lower(), ()))
    if not cue:
        return None
    unit = match.group("unit").lower().rstrip("s")
    find = re.compile(rf"(?P<value>\d+(?:\.\d+)?)\s*{re.escape(unit)}", re.I)
    a, b = (_name(match.group(g)) for g in ("a", "b"))
    first, second = _values(hits, a, b, cue, find), _values(hits, b, a, cue, find)
    if len(first) != 1 or len(second) != 1:
        return None  # a value missing, or two candidates: nothing clear to subtract
    (x, i), (y, j) = next(iter(first.items())), next(iter(second.items()))
    expression = f"{x} - {y}"
    result = format_number(evaluate_arithmetic(expression))
    if numbers_in(result)[0].startswith("-"):
        return None  # the question's premise ("A is longer") does not hold
    note = (
        f"The agent did not calculate the difference; it was computed from the two quoted "
        f"values: {expression} = {result}."
    )
    return Derived(f"{result} {match.group('unit')}", [(i, x), (j, y)], (expression, result), note)


def derive_choice(question: str, hits: list[Hit]) -> Derived | None:
    """'Which was completed first, A or B?' -> the option with the earlier year, when the
    passages quote one year for each next to the question's own verb ("completed")."""
    options = options_in(question)
    words = set(content_words(question))
    order = words & (EARLIER | LATER)
    if not options or len(order) != 1:
        return None
    option_words = {w for o in options for w in content_words(o)}
    cue = {w[:6] for w in words - option_words - EARLIER - LATER - STOPWORDS}
    find = re.compile(rf"(?P<value>{YEAR.pattern})")
    pairs = (options, options[::-1])
    if cue:  # "Which was completed first?": the year next to the question's own verb
        years = [_values(hits, o, other, cue, find) for o, other in pairs]
        if any(len(y) != 1 for y in years):
            return None
        (ya, ia), (yb, ib) = (next(iter(y.items())) for y in years)
        how = "the quoted years"
    else:  # "Which is older?": no verb to tie a year to; each one's earliest quoted year
        found = [_earliest(hits, o, other) for o, other in pairs]
        if found[0] is None or found[1] is None:
            return None
        (ya, ia), (yb, ib) = found[0], found[1]
        how = "the earliest year quoted for each"
    if ya == yb:
        return None
    earlier = 0 if int(ya) < int(yb) else 1
    pick = earlier if order <= EARLIER else 1 - earlier
    note = f"Chosen from {how}: {options[0]} {ya}, {options[1]} {yb}."
    return Derived(options[pick], [(ia, ya), (ib, yb)], None, note)


def _earliest(hits: list[Hit], name: str, other: str) -> tuple[str, int] | None:
    """(year, hit index): the earliest year quoted in the passages about `name` alone."""
    found = [
        (int(m.group()), m.group(), i)
        for i, hit in enumerate(hits)
        if _about(hit, name, other)
        for m in YEAR.finditer(hit.chunk.text)
    ]
    if not found:
        return None
    _, year, index = min(found)
    return year, index


def derive_measure_choice(question: str, hits: list[Hit]) -> Derived | None:
    """'Which is longer / taller, A or B?' -> the option whose quoted measure (the same unit,
    next to the comparative's own word: "412 metres long") is larger (smaller for "shorter")."""
    options = options_in(question)
    compared = [w for w in re.findall(r"\w+", question.lower()) if w in ATTRIBUTES]
    if not options or len(compared) != 1:
        return None
    cue = set(ATTRIBUTES[compared[0]])
    find = re.compile(r"(?P<value>\d+(?:\.\d+)?\s+[a-z]+)", re.I)
    pairs = (options, options[::-1])
    values = [_values(hits, o, other, cue, find, _nearest) for o, other in pairs]
    # only a unit quoted for both options is a measure the two can be compared in
    units = [{_unit(v) for v in found} for found in values]
    shared = units[0] & units[1]
    values = [{v: i for v, i in found.items() if _unit(v) in shared} for found in values]
    if len(shared) != 1 or any(len(v) != 1 for v in values):
        return None  # no common unit, several, or two values for one option: nothing clear
    (va, ia), (vb, ib) = (next(iter(v.items())) for v in values)
    xa, xb = (float(v.split(None, 1)[0]) for v in (va, vb))
    if xa == xb:
        return None  # a tie: nothing to choose
    larger = 0 if xa > xb else 1
    pick = 1 - larger if compared[0] in SMALLER else larger
    note = f"Chosen from the quoted measures: {options[0]} {va}, {options[1]} {vb}."
    return Derived(options[pick], [(ia, va), (ib, vb)], None, note)


def _unit(value: str) -> str:
    """'275 Metres' -> 'metre': the singular and plural forms are one unit."""
    unit = value.split(None, 1)[1].lower()
    return unit[:-1] if unit.endswith("s") else unit


def _name(phrase: str) -> str:
    """'the Alder Viaduct' -> 'Alder Viaduct' (articles and trailing punctuation dropped)."""
    return re.sub(r"^(?:the|a|an)\s+", "", phrase.strip(" ?.!,"), flags=re.I)
