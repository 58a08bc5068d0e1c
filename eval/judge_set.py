"""Judge labelled set: the recipe that derives labelled claims from SQuAD, stored as specs only.

SQuAD is CC BY-SA, so eval/data/judge_set.spec.jsonl holds question ids and perturbation specs
(a kind, the replaced token and its replacement), never the text: `materialize` rebuilds each
claim and its evidence paragraph from ../shared/data at run time.
Regenerate the spec:  python -m eval.judge_set SQUAD_JSON eval/data/judge_set.spec.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eval.datasets import Dataset, Question, load_squad2

SPEC_NAME = "judge_set.spec.jsonl"
KINDS = ("gold_sentence", "gold_qa", "number", "negation", "entity", "qa_swap", "unrelated")
LABEL_OF = {"gold_sentence": "supported", "gold_qa": "supported", "unrelated": "unsupported"}
_AUX = re.compile(r"\b(is|was|are|were|has|had|can|could|will|would|did|does)\b")
_NUM = re.compile(r"\b\d[\d,]*\b")
# A capitalised word after a lower-case word or comma: a name, not a sentence start.
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{3,}\b")


@dataclass(frozen=True)
class LabelledClaim:
    qid: str
    kind: str
    claim: str
    evidence: str
    label: str  # supported | unsupported | contradicted


def default_spec_path() -> Path:
    return Path(str(resources.files("eval") / "data" / SPEC_NAME))


def _sentence(dataset: Dataset, q: Question) -> tuple[str, str]:
    """The question's gold answer sentence and its whole paragraph."""
    return q.evidence[0], dataset.documents[q.gold_sources[0]]


def _perturb(
    kind: str, sentence: str, rng: random.Random, pool: list[str]
) -> dict[str, Any] | None:
    """A spec that changes one fact of the sentence, or None when the sentence has no such fact."""
    if kind == "number":
        nums = _NUM.findall(sentence)
        if not nums:
            return None
        old = rng.choice(nums)
        value = int(old.replace(",", ""))
        return {"old": old, "new": str(value + rng.choice([1, 2, 3, 5, 10, 20]))}
    if kind == "negation":
        m = _AUX.search(sentence)
        return (
            {"old": m.group(0), "new": f"{m.group(0)} not"}
            if m and " not " not in sentence
            else None
        )
    if kind == "entity":
        cands = _NAME.findall(sentence)
        if not cands:
            return None
        return {"old": rng.choice(cands), "new": rng.choice(pool)}
    return {}


def build_spec(squad_path: Path, n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """Pick answerable questions, give each a kind; sentence kinds need a checkable fact."""
    dataset = load_squad2(squad_path)
    rng = random.Random(seed)
    answerable = [q for q in dataset.questions if q.has_answer and q.evidence]
    pool = sorted({w for q in answerable[::7] for w in _NAME.findall(q.evidence[0])})
    specs: list[dict[str, Any]] = []
    for q in rng.sample(answerable, len(answerable)):
        kind = KINDS[len(specs) % len(KINDS)]
        change = _perturb(kind, q.evidence[0], rng, pool)
        if change is None:
            continue
        spec: dict[str, Any] = {"qid": q.qid, "kind": kind, **change}
        if kind == "qa_swap":
            spec["new"] = rng.choice(pool)
        if kind == "unrelated":
            other = rng.choice([o for o in answerable if o.gold_sources != q.gold_sources])
            spec["other_qid"] = other.qid
        if spec.get("new") and spec["new"] in dataset.documents[q.gold_sources[0]]:
            continue  # the "wrong" value occurs in the paragraph: not a clean perturbation
        specs.append(spec)
        if len(specs) >= n:
            break
    return specs


def materialize(specs: list[dict[str, Any]], dataset: Dataset) -> Iterator[LabelledClaim]:
    """Rebuild claim text, evidence paragraph and label from a spec and the SQuAD file."""
    by_id = {q.qid: q for q in dataset.questions}
    for spec in specs:
        q = by_id.get(spec["qid"])
        if q is None:
            continue
        sentence, paragraph = _sentence(dataset, q)
        kind = spec["kind"]
        question = q.question.strip().rstrip("?")
        if kind == "gold_sentence":
            claim = sentence
        elif kind == "gold_qa":
            claim = f"{question}: {q.answers[0]}"
        elif kind == "qa_swap":
            claim = f"{question}: {spec['new']}"
        elif kind == "unrelated":
            claim = _sentence(dataset, by_id[spec["other_qid"]])[0]
        else:
            claim = re.sub(rf"\b{re.escape(spec['old'])}\b", spec["new"], sentence, count=1)
        label = LABEL_OF.get(kind, "contradicted")
        yield LabelledClaim(q.qid, kind, claim, paragraph, label)


def load_set(squad_path: Path, spec_path: Path | None = None) -> list[LabelledClaim]:
    path = spec_path or default_spec_path()
    specs = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return list(materialize(specs, load_squad2(squad_path)))


def main(argv: list[str]) -> None:
    squad, out = Path(argv[0]), Path(argv[1])
    n = int(argv[2]) if len(argv) > 2 else 350
    lines = [json.dumps(s, sort_keys=True) for s in build_spec(squad, n)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} specs to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
