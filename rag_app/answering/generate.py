"""Generation: render a QA prompt over the hits, stream the JSON reply, parse with fallbacks."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_app.answering.verify import lexical_support, split_sentences
from rag_app.prompts import render_prompt
from rag_app.records import ABSTAIN_PHRASE, Hit, Usage

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

# Short answers keep the 135M model from free-writing; the JSON schema makes vLLM keep the format.
ANSWER_MAX_CHARS = 120
REASONING_MAX_CHARS = 400
MIN_SENTENCE_WORDS = 4
# Words of the question found only in a sentence's topic count this much (see `focus`).
CONTEXT_WEIGHT = 0.5
PROMPTS = {"direct": "qa", "cot": "qa_cot", "cited": "qa_cited"}


def answer_schema(prompt_name: str, choices: list[str] | None = None) -> dict[str, Any]:
    """The JSON schema vLLM enforces for a QA prompt (reasoning first for CoT).

    With `choices` the answer must be one of them (see rag_app/answering/spans.py).
    """
    props: dict[str, Any] = {}
    if prompt_name == "qa_cot":
        props["reasoning"] = {"type": "string", "maxLength": REASONING_MAX_CHARS}
    if choices:
        props["answer"] = {"type": "string", "enum": choices}
    else:
        props["answer"] = {"type": "string", "minLength": 1, "maxLength": ANSWER_MAX_CHARS}
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def prompt_passages(hits: list[Hit]) -> list[dict[str, Any]]:
    """Numbered passages for the prompt, each with its section (heading path, "" for none);
    text that could close our delimiter or its attribute is defused."""
    out = []
    for n, hit in enumerate(hits, start=1):
        text = re.sub(r"</?\s*passage", "(passage", hit.chunk.text, flags=re.IGNORECASE)
        section = " > ".join(re.sub(r'[<>"]', "", heading) for heading in hit.chunk.headings)
        out.append({"n": n, "source": hit.chunk.source, "section": section, "text": text.strip()})
    return out


def focus(
    question: str,
    hits: list[Hit],
    embeddings: Embeddings | None,
    sentences: int,
    context_weight: float = CONTEXT_WEIGHT,
) -> list[dict[str, Any]]:
    """The `sentences` passage sentences closest to the question, each labelled by its passage.

    Relevance = embedding cosine + share of the question's content words in the sentence, where
    words found only in the sentence's topic (its passage's headings and opening sentence) count
    `context_weight`: "It is 38 metres tall" answers "How tall is the Harrow Point Lighthouse?"
    in the passage that opens "The Harrow Point Lighthouse stands ...", though it names nothing.
    """
    passages = prompt_passages(hits)
    if sentences <= 0 or not passages:
        return passages
    pool = []  # (passage number, sentence, the passage's topic)
    for passage, hit in zip(passages, hits, strict=True):
        said = split_sentences(passage["text"])
        topic = topic_of(hit, said)  # once per passage: every sentence of it shares it
        pool += [(passage["n"], s, topic) for s in said]
    # Headings and table fragments crowd out the sentences that hold answers.
    pool = [x for x in pool if len(x[1].split()) >= MIN_SENTENCE_WORDS] or pool
    lexical = np.asarray([in_context(question, s, topic, context_weight) for _, s, topic in pool])
    score = lexical
    if embeddings is not None:
        vectors = np.asarray(embeddings.embed_documents([question] + [s for _, s, _ in pool]))
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        score = lexical + vectors[1:] @ vectors[0]
    best = sorted(np.argsort(-score)[:sentences].tolist())  # keep document order within the pick
    # A sentence keeps its passage's section: "It is 38 metres tall" under "Harrow Point
    # Lighthouse > Construction" says which tower is 38 metres tall.
    sections = {passage["n"]: passage["section"] for passage in passages}
    return [
        {"n": pool[i][0], "source": "", "section": sections[pool[i][0]], "text": pool[i][1]}
        for i in best
    ]


def topic_of(hit: Hit, sentences: list[str]) -> str:
    """What a passage is about: its heading path and its opening sentence."""
    return " ".join([*hit.chunk.headings, *sentences[:1]])


def in_context(question: str, sentence: str, topic: str, context_weight: float) -> float:
    """Share of the question's words in the sentence, plus `context_weight` times the share
    found only in its topic."""
    own = lexical_support(question, sentence)
    if context_weight <= 0 or not topic:
        return own
    return own + context_weight * (lexical_support(question, f"{topic} {sentence}") - own)


def render_qa(prompt_name: str, question: str, passages: list[dict[str, Any]]) -> str:
    return render_prompt(prompt_name, question=question, passages=passages, abstain=ABSTAIN_PHRASE)


@dataclass
class Generation:
    """What the model produced for one prompt, parsed."""

    raw: str
    answer: str
    reasoning: str = ""
    parsed: bool = True
    usage: Usage = field(default_factory=Usage)
    first_token_s: float | None = None
    confidence: float | None = None  # geometric-mean token probability of the answer value
    logprobs: list[float] = field(default_factory=list)  # of the answer value's tokens
    abstain_logprob: float | None = None  # of beginning the answer with the abstention phrase


# (token, logprob, {alternative token: logprob}) as the server streamed them
Token = tuple[str, float, dict[str, float]]
TOP_LOGPROBS = 20  # alternatives per token: enough to see the abstention among the choices
MASKED_LOGPROB = -1000.0  # vLLM reports tokens that structured outputs forbid at -9999

_FIELD_START = r'"{key}"\s*:\s*"'
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_field(raw: str, key: str) -> tuple[str, int, int] | None:
    """Decode the (possibly unfinished) JSON string value of `key`: (value, start, end) offsets."""
    match = re.search(_FIELD_START.format(key=re.escape(key)), raw)
    if match is None:
        return None
    out: list[str] = []
    i = match.end()
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            return "".join(out), match.end(), i
        if ch == "\\":
            if i + 1 >= len(raw):
                break
            code = raw[i + 1]
            if code == "u":
                if i + 6 > len(raw):
                    break
                try:
                    out.append(chr(int(raw[i + 2 : i + 6], 16)))
                except ValueError:
                    out.append(raw[i + 2 : i + 6])
                i += 6
                continue
            out.append(_ESCAPES.get(code, code))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), match.end(), i


def parse_reply(raw: str) -> tuple[str, str, bool]:
    """(answer, reasoning, parsed_ok) from the reply; malformed JSON falls back to the raw text."""
    try:
        data = json.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("answer"), str):
            return data["answer"].strip(), str(data.get("reasoning") or "").strip(), True
    except json.JSONDecodeError:
        pass
    answer = partial_field(raw, "answer")
    reasoning = partial_field(raw, "reasoning")
    if answer is not None:
        return answer[0].strip(), (reasoning[0].strip() if reasoning else ""), False
    # No JSON at all (e.g. a server without structured outputs): the text is the answer.
    text = re.sub(r"^\s*(answer\s*:)?", "", raw, flags=re.IGNORECASE).strip().strip("{}").strip()
    return text, "", False


def _answer_tokens(tokens: list[Token], raw: str) -> list[Token]:
    span = partial_field(raw, "answer")
    if not tokens or span is None:
        return []
    start, end = span[1], span[2]
    offset, picked = 0, []
    for token in tokens:
        if offset < end and offset + len(token[0]) > start:
            picked.append(token)
        offset += len(token[0])
    return picked


def answer_logprobs(tokens: list[Token], raw: str) -> list[float]:
    """Log-probabilities of the tokens that spell the answer value ([] if unknown)."""
    return [logprob for _, logprob, _ in _answer_tokens(tokens, raw)]


def abstain_logprob(tokens: list[Token], raw: str) -> float | None:
    """Log-probability that the answer would have begun with the abstention phrase instead.

    With answer choices, the first answer token's alternatives (top_logprobs) show how close the
    model came to abstaining: a guess it nearly withheld is likely wrong (rag_app/answering/
    gate.py). None when the server sent no alternatives.
    """
    picked = _answer_tokens(tokens, raw)
    if not picked or not picked[0][2]:
        return None
    first = picked[0][2]
    starts = [
        lp for tok, lp in first.items() if tok.strip() and ABSTAIN_PHRASE.startswith(tok.strip())
    ]
    return max(starts) if starts else min(first.values()) - 1.0


def confidence_of(logprobs: list[float]) -> float | None:
    """Geometric-mean probability of the answer's tokens (None if unknown)."""
    return math.exp(sum(logprobs) / len(logprobs)) if logprobs else None


def _usage(meta: dict[str, Any] | None) -> Usage:
    if not meta:
        return Usage()
    return Usage(
        prompt_tokens=int(meta.get("input_tokens", 0)),
        completion_tokens=int(meta.get("output_tokens", 0)),
    )


def _token_logprobs(metadata: dict[str, Any]) -> list[Token]:
    content = (metadata.get("logprobs") or {}).get("content") or []
    return [
        (
            str(t.get("token", "")),
            float(t.get("logprob", 0.0)),
            {
                str(a.get("token", "")): float(a.get("logprob", 0.0))
                for a in t.get("top_logprobs") or []
                if float(a.get("logprob", 0.0)) > MASKED_LOGPROB
            },
        )
        for t in content
    ]


def _visible_answer(raw: str) -> str:
    """The answer text so far: the JSON field, or the plain text when the reply is not JSON."""
    if raw.lstrip() and not raw.lstrip().startswith("{"):
        return raw.lstrip()
    value = partial_field(raw, "answer")
    return value[0] if value is not None else ""


def stream_answer(
    llm: BaseChatModel,
    prompt_name: str,
    prompt: str,
    started: float,
    choices: list[str] | None = None,
) -> Iterator[str | Generation]:
    """Stream the answer field's text as it grows, then yield the parsed Generation last."""
    # vLLM's own `structured_outputs` field rather than OpenAI's response_format: with the latter
    # langchain-openai takes the beta parse path, which raises on a reply cut at max_tokens
    # instead of handing over the partial text that parse_reply can still use.
    extra = {"structured_outputs": {"json": answer_schema(prompt_name, choices)}}
    runnable = llm.bind(extra_body=extra, logprobs=True, top_logprobs=TOP_LOGPROBS)
    raw, shown, first = "", "", None
    usage = Usage()
    tokens: list[Token] = []
    for chunk in runnable.stream(prompt):
        text = chunk.content if isinstance(chunk.content, str) else ""
        if text and first is None:
            first = time.perf_counter() - started
        raw += text
        usage = usage + _usage(getattr(chunk, "usage_metadata", None))
        tokens.extend(_token_logprobs(chunk.response_metadata or {}))
        visible = _visible_answer(raw)
        if len(visible) > len(shown) and visible.startswith(shown):
            yield visible[len(shown) :]
            shown = visible
    answer, reasoning, parsed = parse_reply(raw)
    logprobs = answer_logprobs(tokens, raw) if parsed else []
    yield Generation(
        raw=raw,
        answer=answer,
        reasoning=reasoning,
        parsed=parsed,
        usage=usage,
        first_token_s=first,
        confidence=confidence_of(logprobs),
        logprobs=logprobs,
        abstain_logprob=abstain_logprob(tokens, raw) if parsed else None,
    )
