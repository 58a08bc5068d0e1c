"""Eval datasets: load SQuAD 2.0, BEIR and plain JSONL files into questions, documents and qrels."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from eval.claims import split_sentences
from rag_app.errors import ConfigError

Format = Literal["squad2", "beir", "jsonl"]


@dataclass(frozen=True)
class Question:
    """One evaluation question with its gold answers and the source ids of its gold passages."""

    qid: str
    question: str
    answers: tuple[str, ...] = ()
    gold_sources: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # gold sentences that hold an answer (for the gold judge)

    @property
    def has_answer(self) -> bool:
        return bool(self.answers)


@dataclass
class Dataset:
    """Questions plus the documents to index (source id -> text) and graded relevance (qrels)."""

    path: Path
    fmt: Format
    digest: str
    questions: list[Question]
    documents: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def kb_name(self) -> str:
        """KB named from the file's hash so a second run reuses the index automatically."""
        return f"eval-{self.fmt}-{self.digest[:12]}"


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _answer_sentences(context: str, answers: list[dict]) -> tuple[str, ...]:
    """The context sentences that contain an answer span (by offset, else by text)."""
    found: list[str] = []
    offset = 0
    spans = []
    for sent in split_sentences(context):
        start = context.find(sent, offset)
        offset = max(offset, start + len(sent)) if start >= 0 else offset
        spans.append((start, sent))
    for ans in answers:
        pos = int(ans.get("answer_start", -1))
        for start, sent in spans:
            inside = 0 <= start <= pos < start + len(sent)
            if (inside or (pos < 0 and ans["text"] in sent)) and sent not in found:
                found.append(sent)
    return tuple(found)


def load_squad2(path: Path) -> Dataset:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        msg = f"{path}: not a SQuAD 2.0 JSON file (need data[].paragraphs[]): {exc}"
        raise ConfigError(msg) from exc
    documents: dict[str, str] = {}
    questions: list[Question] = []
    for article in data:
        title = article.get("title", "untitled")
        for p_index, para in enumerate(article["paragraphs"]):
            source = f"squad/{title}/{p_index}"
            documents[source] = para["context"]
            for qa in para["qas"]:
                answers = qa.get("answers") or []
                questions.append(
                    Question(
                        qid=qa["id"],
                        question=qa["question"],
                        answers=tuple(a["text"] for a in answers),
                        gold_sources=(source,),
                        evidence=_answer_sentences(para["context"], answers),
                    )
                )
    qrels = {q.qid: {s: 1 for s in q.gold_sources} for q in questions}
    return Dataset(path, "squad2", file_digest(path), questions, documents, qrels)


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise ConfigError(f"{path}:{line_no}: invalid JSON line: {exc}") from exc
    return rows


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (query-id, corpus-id, score; header line; CRLF tolerated)."""
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.strip().split("\t")
        if len(parts) == 3:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def load_beir(path: Path, split: str = "train") -> Dataset:
    """A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); judged queries only."""
    root = path if path.is_dir() else path.parent
    qrels_path = root / "qrels" / f"{split}.tsv"
    for needed in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise ConfigError(f"{needed}: missing; --format beir needs corpus, queries and qrels")
    documents = {}
    for row in _read_jsonl(root / "corpus.jsonl"):
        title = row.get("title") or ""
        documents[str(row["_id"])] = f"{title}\n\n{row['text']}" if title else row["text"]
    qrels = read_qrels(qrels_path)
    questions = [
        Question(qid=str(r["_id"]), question=r["text"], gold_sources=tuple(qrels[str(r["_id"])]))
        for r in _read_jsonl(root / "queries.jsonl")
        if str(r["_id"]) in qrels
    ]
    return Dataset(root, "beir", file_digest(qrels_path), questions, documents, qrels)


def load_jsonl(path: Path) -> Dataset:
    """Lines of {"id", "question", "answers": [...] ([] = unanswerable), "context"?, "source"?}."""
    documents: dict[str, str] = {}
    questions = []
    for n, row in enumerate(_read_jsonl(path), 1):
        if "question" not in row:
            raise ConfigError(f"{path}:{n}: missing field 'question'")
        sources: tuple[str, ...] = ()
        if row.get("context"):
            source = str(
                row.get("source") or f"doc-{hashlib.sha1(row['context'].encode()).hexdigest()[:12]}"
            )
            documents[source] = row["context"]
            sources = (source,)
        elif row.get("source"):
            sources = (str(row["source"]),)
        answers = tuple(str(a) for a in row.get("answers") or [])
        evidence = _answer_sentences(row.get("context") or "", [{"text": a} for a in answers])
        questions.append(
            Question(str(row.get("id", n)), row["question"], answers, sources, evidence)
        )
    qrels = {q.qid: {s: 1 for s in q.gold_sources} for q in questions if q.gold_sources}
    return Dataset(path, "jsonl", file_digest(path), questions, documents, qrels)


def load_dataset(path: Path, fmt: Format) -> Dataset:
    if not path.exists():
        raise ConfigError(f"--dataset {path}: no such file or folder")
    loaders = {"squad2": load_squad2, "beir": load_beir, "jsonl": load_jsonl}
    return loaders[fmt](path)


def sample_questions(questions: list[Question], limit: int | None, seed: int) -> list[Question]:
    """A seeded sample that keeps the file's HasAns/NoAns mix; file order is preserved."""
    if limit is None or limit >= len(questions):
        return list(questions)
    rng = random.Random(seed)
    has = [i for i, q in enumerate(questions) if q.has_answer]
    no = [i for i, q in enumerate(questions) if not q.has_answer]
    n_has = round(limit * len(has) / len(questions))
    picked = rng.sample(has, n_has) + rng.sample(no, limit - n_has)
    return [questions[i] for i in sorted(picked)]
