"""Golden-set drafting: the model proposes candidate questions from a KB's own passages.

The user accepts, edits or drops each candidate in the UI; nothing drafted enters the set on its
own. Passages are sampled across documents (seeded, so a redraw can be reproduced), and the
model's reply is parsed as data: a reply that is not a question with an answer is dropped.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag_app.prompts import render_prompt

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase

MIN_PASSAGE_CHARS = 80  # shorter chunks (titles, list stubs) make poor questions
JSON_OBJECT = re.compile(r"\{.*?\}", re.S)


@dataclass(frozen=True)
class Candidate:
    question: str
    answer: str
    source: str  # file name of the passage's document
    passage: str


def sample_passages(kb: KnowledgeBase, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(source, text) of up to n chunks, round-robin over documents so each gets a turn."""
    rng = random.Random(seed)
    per_doc: list[list[tuple[str, str]]] = []
    for doc in kb.sources():
        rows = kb.catalog.by_ids(kb.catalog.source_ids(doc.source))
        texts = [r.text for r in rows.values() if len(r.text) >= MIN_PASSAGE_CHARS]
        rng.shuffle(texts)
        if texts:
            per_doc.append([(doc.source, t) for t in texts])
    rng.shuffle(per_doc)
    picked: list[tuple[str, str]] = []
    while len(picked) < n and any(per_doc):
        for queue in per_doc:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked


def parse_candidate(reply: str) -> tuple[str, str] | None:
    """(question, answer) from the model's reply, or None when it is not one."""
    for raw in JSON_OBJECT.findall(reply):
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            question = " ".join(str(data.get("question", "")).split())
            answer = " ".join(str(data.get("answer", "")).split())
            if question.endswith("?") and answer and len(question) <= 300 and len(answer) <= 300:
                return question, answer
    return None


def draft_candidates(
    kb: KnowledgeBase, llm: BaseChatModel, n: int = 5, seed: int = 0
) -> list[Candidate]:
    """Ask the model for one question per sampled passage; unusable replies are dropped."""
    out: list[Candidate] = []
    for source, text in sample_passages(kb, n, seed):
        reply = llm.invoke(render_prompt("draft_question", passage=text))
        parsed = parse_candidate(str(reply.content))
        if parsed:
            out.append(Candidate(parsed[0], parsed[1], Path(source).name, text))
    return out
