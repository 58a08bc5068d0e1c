"""Answer form: does an answer have the shape its question asks for?

A grounded span can still answer another question ("How many metres longer is A than B?" ->
"412", A's own length; "Which was completed first, A or B?" -> "1889"; "How many years did it
take to build A?" -> "1889"). These checks are pure (options come from the question's "A or B",
the arithmetic from the agent's recorded calculator steps). An agent answer that fails one is
never confident (rag_app/agent/verdict.py); a direct answer (a passage span, no calculation) is
checked by `span_form` (rag_app/answering/answer.py). The question patterns are English.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Literal

from rag_app.answering.ground import normalize
from rag_app.records import Citation
from rag_app.words import STOPWORDS

Calculation = tuple[str, str]  # (expression, result) as the calculator tool recorded it
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # "1,200"; "max(3, 9)" keeps its comma
YES_NO_QUESTION = re.compile(r"(is|are|was|were|do|does|did|has|have|had|can|could|will)\b", re.I)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Comparatives that make "how many/much ..." ask for a difference ("how many metres longer",
# "how many years after", "how much more"); within two words of "how many/much".
COMPARATIVES = (
    "more|less|fewer|longer|shorter|taller|higher|lower|older|younger|larger|bigger|smaller|"
    "wider|narrower|deeper|shallower|heavier|lighter|later|earlier|greater|faster|slower|"
    "farther|further|after|before|apart|newer"
)
DIFFERENCE = re.compile(
    rf"\bhow (?:many|much)\b(?:\s+\w+){{0,2}}?\s+(?:{COMPARATIVES})\b"
    r"|\bdifference (?:between|in)\b",
    re.I,
)
# A choice between two named things asks which is more/first/...: without such a cue "A or B"
# is often one thing named two ways ("What do Muslims call the Torah or the Law?").
CHOICE_CUES = re.compile(
    rf"\b(?:{COMPARATIVES}|first|last|most|least|best|worst|biggest|largest|longest|tallest|"
    r"highest|smallest|shortest|widest|deepest|heaviest|earliest|oldest|newest|latest|"
    r"closest|nearest|farthest|furthest|fastest|slowest|greatest)\b",
    re.I,
)
# "how many years did it take", "how long did the work last": a duration, never a calendar year.
DURATION = re.compile(
    r"\bhow (?:many|much) (?:years?|months?|weeks?|days?|decades?|centuries|hours?|minutes?|"
    r"time)\b(?!\s+ago)|\bhow long (?:did|does|do|will|would|has|have|had)\b",
    re.I,
)
# "how long/tall/far is ...": a measure; a bare year ("1889") as its answer is a misread.
MEASURE = re.compile(r"\bhow (?:long|tall|far|high|wide|deep|big|large|heavy)\b", re.I)
CALENDAR_YEAR = re.compile(r"^\s*(?:1\d{3}|20\d{2})\s*$")
FormVerdict = Literal["ok", "unsure", "wrong"]
# "..., A or B?" / "... A or B first?": the clause that offers the choice.
_OR = re.compile(r"\s+or\s+", re.I)
_CLAUSE_BREAK = re.compile(r"[,:;]")
_LEADING = re.compile(r"^(?:(?:the|a|an|either)\s+)+", re.I)
# A run of capitalised words (a name), e.g. "Alder Viaduct", "Bank of England".
_NAME = r"[A-Z][\w'&-]*(?:\s+(?:of|the|de|and)?\s*[A-Z][\w'&-]*)*"


def is_yes_no(question: str) -> bool:
    return bool(YES_NO_QUESTION.match(question.strip()))


def asks_difference(question: str) -> bool:
    """'how many more / how much longer / how many metres longer / difference between ...'."""
    return bool(DIFFERENCE.search(question))


def options_in(question: str) -> list[str]:
    """The two options of an "A or B" question (articles dropped), or [] when it offers none.

    With a comma or colon before the choice ("Which was first, A or B?") an option is the whole
    phrase between the break and "or"; otherwise ("Was A or B built first?") the names on either
    side of "or", or the single words there when the options are not names.
    """
    text = question.strip().rstrip("?.! ")
    parts = _OR.split(text)
    if len(parts) != 2:
        return []  # no choice, or three-way choices this check does not read
    left, right = parts
    if _CLAUSE_BREAK.search(left):
        a = _CLAUSE_BREAK.split(left)[-1]
        b = _CLAUSE_BREAK.split(right)[0]
    else:
        a = _edge(left, last=True)
        b = _edge(right, last=False)
    options = [_LEADING.sub("", " ".join(o.split())) for o in (a, b)]
    if not all(set(normalize(o).split()) - STOPWORDS for o in options):
        return []  # "A or not" is a yes/no question; "the bridge or its towers" no choice
    return options


def _edge(text: str, last: bool) -> str:
    """The name (or else the word) at the end (last=True) or start of `text`."""
    if last:  # the question's first word is capitalised but no name ("Was", "Which")
        text = text.split(None, 1)[1] if len(text.split()) > 1 else ""
    text = _LEADING.sub("", text.strip())
    words = text.split()
    names = list(re.finditer(_NAME, text))
    if last and names and names[-1].end() == len(text):
        return names[-1].group()
    if not last and names and names[0].start() == 0:
        return names[0].group()
    if not words:
        return ""
    return words[-1] if last else words[0]


def named_options(answer: str, options: Sequence[str]) -> list[str]:
    """The options the answer names: most of the words that tell this option from the others."""
    answer_words = set(normalize(answer).split())
    named = []
    for option in options:
        others = {w for o in options if o != option for w in normalize(o).split()}
        own = [w for w in normalize(option).split() if w not in others and w not in STOPWORDS]
        own = own or normalize(option).split()
        if own and sum(w in answer_words for w in own) * 2 >= len(own):
            named.append(option)
    return named


def numbers_in(text: str) -> list[str]:
    """The numbers of `text` as plain strings ("1,200" -> "1200", "48.0" -> "48")."""
    return [_plain(n) for n in NUMBER.findall(THOUSANDS.sub("", text))]


def _plain(number: str) -> str:
    value = float(number)
    return str(int(value)) if value.is_integer() else str(value)


def is_subtraction(expression: str) -> bool:
    """True when the expression subtracts (a difference), read from its syntax tree, never run."""
    try:
        tree = ast.parse(THOUSANDS.sub("", expression.strip()), mode="eval")
    except SyntaxError:
        return False
    nodes = ast.walk(tree)
    return any(isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) for node in nodes)


def quoted_difference(
    answer: str, calculations: Sequence[Calculation], citations: Sequence[Citation]
) -> Calculation | None:
    """The calculator step behind a difference answer: it subtracts two or more numbers, each
    quoted by a cited passage, and its result is the answer's number."""
    answer_numbers = set(numbers_in(answer))
    quoted = {n for c in citations for n in numbers_in(c.quote)}
    for expression, result in calculations:
        inputs = numbers_in(expression)
        if (
            is_subtraction(expression)
            and len(inputs) >= 2
            and set(numbers_in(result)) & answer_numbers
            and all(n in quoted for n in inputs)
        ):
            return expression, result
    return None


def answer_form(
    question: str,
    answer: str,
    calculations: Sequence[Calculation],
    citations: Sequence[Citation],
) -> tuple[bool, str]:
    """(ok, why not): a choice names one option, a difference is a calculation over two quoted
    numbers, a yes/no question gets yes or no. Other questions have no form to check."""
    options = options_in(question)
    if options:
        named = named_options(answer, options)
        if not named:
            return False, f"The answer does not name either option ({' or '.join(options)})."
        if len(named) > 1:
            return False, "The answer names both options instead of choosing one."
        return True, ""
    if asks_difference(question):
        if quoted_difference(answer, calculations, citations) is None:
            return False, (
                "The question asks for a difference, but the answer is not a calculation "
                "from two numbers quoted in the cited passages."
            )
        return True, ""
    if is_yes_no(question) and normalize(answer) not in {"yes", "no"}:
        return False, "The question asks yes or no, but the answer is neither."
    return True, ""


def is_comparison(question: str) -> bool:
    """'Which is older, A or B?', 'Was A or B built first?': a choice between two named things."""
    return bool(options_in(question)) and bool(CHOICE_CUES.search(question))


def needs_reasoning(question: str) -> bool:
    """A comparison or a difference: answered from two facts, never by one passage span alone."""
    return is_comparison(question) or asks_difference(question)


def span_form(question: str, answer: str) -> tuple[FormVerdict, str]:
    """A passage span (no calculation behind it) against the form its question asks for:
    'wrong' when it cannot be the answer, 'unsure' when only a calculation or a yes/no could
    show that it is (never confident), else 'ok'; with the reason in words."""
    if is_comparison(question):
        options = options_in(question)
        if len(named_options(answer, options)) != 1:
            return "wrong", f"The answer {answer!r} names neither option ({' or '.join(options)})."
        return "ok", ""
    bare_year = bool(CALENDAR_YEAR.match(THOUSANDS.sub("", answer)))
    if DURATION.search(question) and bare_year:
        return "wrong", f"The question asks how long something took, but {answer!r} is a year."
    if asks_difference(question):
        return "unsure", (
            "The question asks for a difference, which one quoted passage does not show; agent "
            "mode (--mode agent) calculates it from the quoted numbers."
        )
    if MEASURE.search(question) and bare_year:
        return "unsure", f"{answer!r} looks like a year, but the question asks for a measure."
    if is_yes_no(question) and normalize(answer) not in {"yes", "no"}:
        return "unsure", "The question asks yes or no, but the answer is a passage span."
    return "ok", ""
