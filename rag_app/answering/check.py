"""Answer check: one short yes/no call asks the model whether the quoted sentence answers the
question with the grounded span; the log-odds of "yes" is a gate signal.

Why: token confidence and retrieval scores barely tell a right span from a plausible span that
answers a different question (SQuAD 2.0's unanswerables are written to look answerable), and
hand-written English question patterns do not carry over to other domains. Asking the model to
judge the (sentence, question, answer) triple is a signal that needs no domain patterns. The
call prefills one sentence and decodes one token, so it adds a small share of an answer's time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rag_app.prompts import render_prompt

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

PROMPT = "verify_answer"
CHOICES = ("yes", "no")
MAX_SENTENCE_CHARS = 600  # a long chunk "sentence" (a table, a list) would cost prefill time
MAX_SECTION_CHARS = 200  # a deep heading path costs prefill time as a long sentence does
TOP_LOGPROBS = 10
CLIP = 15.0  # log-odds beyond this say nothing more, and keep the gate's inputs bounded
ABSENT_LOGPROB = -30.0  # a reply token not among the alternatives the server returned


def check_prompt(question: str, sentence: str, answer: str, section: str = "") -> str:
    """The check's prompt. `section` is the passage's heading path: "It is 38 metres tall" under
    "Harrow Point Lighthouse > Construction" does answer how tall the lighthouse is."""
    return render_prompt(
        PROMPT,
        question=question,
        sentence=sentence.strip()[:MAX_SENTENCE_CHARS],
        answer=answer,
        section=section[:MAX_SECTION_CHARS],
    )


def yes_log_odds(top: dict[str, float]) -> float | None:
    """log P(yes) - log P(no) from the first reply token's alternatives (None: neither there)."""
    best: dict[str, float] = {}
    for token, logprob in top.items():
        word = token.strip().strip('"').lower()
        if word in CHOICES:
            best[word] = max(best.get(word, ABSENT_LOGPROB), logprob)
    if not best:
        return None
    odds = best.get("yes", ABSENT_LOGPROB) - best.get("no", ABSENT_LOGPROB)
    return max(-CLIP, min(CLIP, odds))


def first_token_alternatives(metadata: dict[str, Any]) -> dict[str, float]:
    """{token: logprob} of the first generated token, the chosen one included."""
    content = (metadata.get("logprobs") or {}).get("content") or []
    if not content:
        return {}
    first = content[0]
    top = {
        str(a.get("token", "")): float(a.get("logprob", 0.0))
        for a in first.get("top_logprobs") or []
    }
    top.setdefault(str(first.get("token", "")), float(first.get("logprob", 0.0)))
    return top


def check_answer(
    llm: BaseChatModel, question: str, sentence: str, answer: str, section: str = ""
) -> float | None:
    """The model's log-odds that `answer` is what `sentence` says for `question`.

    None when the server returns no log-probabilities (the gate then uses its mean for it).
    The reply is held to one of CHOICES by vLLM's structured outputs, so the first token decides.
    """
    runnable = llm.bind(
        extra_body={"structured_outputs": {"choice": list(CHOICES)}},
        logprobs=True,
        top_logprobs=TOP_LOGPROBS,
        max_tokens=1,
        temperature=0.0,
    )
    reply = runnable.invoke(check_prompt(question, sentence, answer, section))
    odds = yes_log_odds(first_token_alternatives(reply.response_metadata or {}))
    return None if odds is None or math.isnan(odds) else odds
