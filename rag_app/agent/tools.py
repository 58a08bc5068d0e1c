"""Agent tools: typed functions the ReAct loop calls; their docstrings are the prompt's tool list.

Tools only read the knowledge base or compute: no shell, no network, no file-system writes.
"""

from __future__ import annotations

import ast
import inspect
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag_app.answering.form import THOUSANDS
from rag_app.records import Chunk

if TYPE_CHECKING:
    from ingest.kb import KnowledgeBase
    from rag_app.settings import Settings

WORD = re.compile(r"\w+")
SENTENCE = re.compile(r"(?<=[.!?])\s+")


class ToolError(Exception):
    """A tool refused its input; the message is shown to the model as the observation."""


@dataclass
class ToolContext:
    """What tools may touch: the knowledge base (read-only), settings, and the passages seen."""

    kb: KnowledgeBase
    settings: Settings
    seen: dict[str, Chunk] = field(default_factory=dict)  # chunk_id -> chunk, in order first seen
    scores: dict[str, float] = field(default_factory=dict)  # best retrieval score per chunk_id

    def number(self, chunk: Chunk, score: float = 0.0) -> int:
        """The run-wide passage number [n] of a chunk (assigned when first seen)."""
        self.seen.setdefault(chunk.chunk_id, chunk)
        self.scores[chunk.chunk_id] = max(score, self.scores.get(chunk.chunk_id, score))
        return list(self.seen).index(chunk.chunk_id) + 1


def search_docs(ctx: ToolContext, query: str) -> str:
    """Search the documents for passages about `query` (a short question or keywords).

    Returns numbered passages with their chunk ids.
    """
    from rag_app.answering.retrieve import retrieve  # lazy: pulls in the embedding stack

    query = query.strip()
    if not query:
        raise ToolError("search_docs needs a non-empty query, e.g. a sub-question.")
    hits = retrieve(query, ctx.kb, ctx.settings)
    if not hits:
        return f"No passages found for {query!r}."
    budget = max(80, ctx.settings.agent_max_observation_chars // len(hits) - 60)
    blocks = []
    for hit in hits:
        n = ctx.number(hit.chunk, hit.score)
        text = excerpt(hit.chunk.text, query, budget)
        blocks.append(f"[{n}] chunk_id={hit.chunk.chunk_id} source={_name(hit.chunk)}\n{text}")
    return "\n".join(blocks)


def read_source(ctx: ToolContext, chunk_id: str) -> str:
    """Read the passage `chunk_id` (an id or a passage number like 3) with its neighbours."""
    chunk_id = chunk_id.strip().removeprefix("chunk_id=").strip("[] ")
    if chunk_id.isdigit() and 0 < int(chunk_id) <= len(ctx.seen):
        chunk_id = list(ctx.seen)[int(chunk_id) - 1]
    chunks = ctx.kb.neighbours(chunk_id, window=1)
    if not chunks:
        raise ToolError(f"No passage with chunk_id {chunk_id!r}; use an id shown by search_docs.")
    n = ctx.number(next((c for c in chunks if c.chunk_id == chunk_id), chunks[0]))
    text = " ".join(c.text for c in chunks)
    return f"[{n}] chunk_id={chunk_id} source={_name(chunks[0])}\n{text}"


def list_sources(ctx: ToolContext) -> str:
    """List the documents in the knowledge base with their number of passages."""
    infos = ctx.kb.sources()
    if not infos:
        return "The knowledge base is empty."
    return "\n".join(f"- {info.source} ({info.chunks} passages)" for info in infos)


def calculator(ctx: ToolContext, expression: str) -> str:
    """Compute arithmetic such as `(1200 + 800) / 2`: + - * / // % **, round, min, max, abs."""
    return format_number(evaluate_arithmetic(expression))


Tool = Callable[..., str]
TOOLS: dict[str, Tool] = {
    "search_docs": search_docs,
    "read_source": read_source,
    "list_sources": list_sources,
    "calculator": calculator,
}


def describe_tools() -> list[dict[str, str]]:
    """Name, signature and description of each tool, taken from the functions themselves."""
    described = []
    for name, func in TOOLS.items():
        params = list(inspect.signature(func).parameters.values())[1:]  # drop ctx
        args = ", ".join(p.name for p in params)
        doc = " ".join((inspect.getdoc(func) or "").split())
        described.append({"name": name, "signature": f"{name}({args})", "description": doc})
    return described


def run_tool(ctx: ToolContext, name: str, tool_input: str) -> str:
    """Call tool `name`; a refusal or crash becomes the observation text instead of an exception."""
    func = TOOLS.get(name)
    if func is None:
        return f"Error: unknown tool {name!r}; use one of {', '.join(TOOLS)}."
    try:
        if len(inspect.signature(func).parameters) == 1:
            return func(ctx)
        return func(ctx, tool_input)
    except ToolError as exc:
        return f"Error: {exc}"
    except Exception as exc:  # any tool failure is shown to the model, never crashes the run
        return f"Error: {name} failed: {type(exc).__name__}: {exc}"


# --- helpers --------------------------------------------------------------------------------


def _name(chunk: Chunk) -> str:
    return chunk.source.replace("\\", "/").rsplit("/", 1)[-1]


def excerpt(text: str, query: str, budget: int) -> str:
    """The sentences of `text` that best match `query`, in document order, within `budget` chars."""
    text = " ".join(text.split())
    if len(text) <= budget:
        return text
    terms = set(WORD.findall(query.lower()))
    sentences = SENTENCE.split(text)
    ranked = sorted(
        range(len(sentences)),
        key=lambda i: (-len(terms & set(WORD.findall(sentences[i].lower()))), i),
    )
    keep: set[int] = set()
    used = 0
    for i in ranked:
        if used + len(sentences[i]) + 1 > budget:
            continue
        keep.add(i)
        used += len(sentences[i]) + 1
    if not keep:
        return text[: budget - 1] + "…"
    return " … ".join(sentences[i] for i in sorted(keep))


# --- safe arithmetic (AST walk; no eval/exec) -----------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"round": round, "min": min, "max": max, "abs": abs}
MAX_EXPONENT = 100
MAX_MAGNITUDE = 1e100
MAX_EXPRESSION_CHARS = 200


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate plain arithmetic by walking its syntax tree; anything else raises ToolError."""
    # "1,200" is a thousands separator (as in documents); "max(3, 9)" keeps its comma.
    expression = THOUSANDS.sub("", expression.strip()).replace("×", "*").replace("÷", "/")
    if not expression:
        raise ToolError("calculator needs an expression such as 2 + 3 * 4.")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"calculator expressions are limited to {MAX_EXPRESSION_CHARS} characters.")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"calculator could not parse {expression!r}: {exc.msg}.") from exc
    try:
        return _walk(tree.body)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"calculator: {exc}.") from exc


def _walk(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value: float | int = node.value  # type: ignore[assignment]
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _walk(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"calculator: exponent {right} is larger than {MAX_EXPONENT}.")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = _FUNCTIONS.get(node.func.id)
        if func is not None and node.args:
            return _bounded(func(*[_walk(arg) for arg in node.args]))
    raise ToolError(
        f"calculator refuses {ast.unparse(node)!r}: only numbers, + - * / // % **, "
        "parentheses and round/min/max/abs are allowed."
    )


def _bounded(value: Any) -> float | int:
    if isinstance(value, complex) or not isinstance(value, int | float):
        raise ToolError("calculator: the result is not a real number.")
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_MAGNITUDE:
        raise ToolError("calculator: the result is too large.")
    return value


def format_number(value: float | int) -> str:
    """Integers without a trailing .0; floats rounded to 6 significant decimals."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)
