"""CLI command (docs): `rag search`, the passages retrieval returns, shown as a person reads them.

The fused score only orders the hits (RRF sums 1/(rrf_k + rank), so it sits near 0.016-0.033
whatever the query): the text shows rank, source, section/page and a snippet instead, and
`--json` keeps every score with a line saying what it means.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag_app.errors import ConfigError

if TYPE_CHECKING:
    from rag_app.records import Chunk, Hit

SNIPPET_CHARS = 220
MAX_QUERY_CHARS = 2000
HIT_FIELDS = {  # the --json document says what its numbers mean
    "rank": "Position in the fused list, 1 = best.",
    "score": "Fused score: reciprocal-rank fusion of the dense and keyword ranks (the sum of "
    "1/(rrf_k + rank)). It orders the hits and means nothing on its own; higher is better.",
    "dense_score": "Cosine similarity of query and passage embeddings (-1 to 1), when the dense "
    "retriever found the passage; null otherwise.",
    "keyword_score": "BM25 score of the passage for the query's words, when the keyword "
    "retriever found it; null otherwise. Comparable only within one query.",
}


def check_query(query: str) -> str:
    """The query stripped, or a ConfigError worded like `rag ask ""` (one line, exit code 1)."""
    text = (query or "").strip()
    if not text:
        raise ConfigError("The query is empty: type what to look for in the knowledge base.")
    if len(text) > MAX_QUERY_CHARS:
        raise ConfigError(
            f"The query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}. "
            "Search for something shorter."
        )
    return text


def location(chunk: Chunk) -> str:
    """Where a passage is: 'file.md — Heading > Sub, page 3' (parts only when known)."""
    where = chunk.source + (f" — {chunk.section}" if chunk.headings else "")
    return where + (f", page {chunk.page}" if chunk.page else "")


def snippet(text: str, query: str, limit: int = SNIPPET_CHARS) -> str:
    """About `limit` characters of the passage: the stretch holding the most query words."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    words = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    start = _window_start(flat.lower(), words, limit)
    end = flat.rfind(" ", start, start + limit)
    end = end if end > start else start + limit
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def _window_start(lower: str, words: set[str], limit: int) -> int:
    """Start (at a word) of the earliest `limit`-wide window that holds the most query words."""
    found = {m.start() for w in words for m in re.finditer(rf"\b{re.escape(w)}", lower)}
    # a little lead-in before the match reads better than a cut starting on the word itself
    starts = sorted({0} | {max(f - limit // 4, 0) for f in found})
    best = max(starts, key=lambda s: (sum(w in lower[s : s + limit] for w in words), -s))
    return lower.rfind(" ", 0, best) + 1 if best else 0


def hit_lines(rank: int, hit: Hit, query: str) -> list[str]:
    """Two lines per hit: '1. source — section, page N' and the indented snippet."""
    return [f"{rank}. {location(hit.chunk)}", f"   {snippet(hit.chunk.text, query)}"]


def search_payload(kb: str, query: str, hits: list[Hit]) -> dict[str, Any]:
    """The --json document: every hit with its rank and scores, and what each of them means."""
    ranked = [{"rank": n, **h.model_dump(mode="json")} for n, h in enumerate(hits, start=1)]
    return {"kb": kb, "query": query, "mode": "hybrid", "fields": HIT_FIELDS, "hits": ranked}


def search(
    query: Annotated[str, typer.Argument(help="What to look for, in quotes.")],
    kb: Annotated[
        str | None, typer.Option("--kb", help="Knowledge base name (default: settings.kb).")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Passages to show.")] = 5,
    source: Annotated[
        str | None, typer.Option("--source", help="Only passages from this source path.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document, with every score described.")
    ] = False,
) -> None:
    """Show the passages a knowledge base returns for QUERY, best first: source, section, page
    and a snippet of each."""
    query = check_query(query)  # an empty query fails here, before any loading
    from ingest.kb import open_kb
    from rag_app.answering.retrieve import retrieve
    from rag_app.settings import get_settings

    knowledge_base = open_kb(kb, get_settings())
    hits = retrieve(query, knowledge_base, knowledge_base.settings, k=k, source=source)
    if as_json:
        typer.echo(json.dumps(search_payload(knowledge_base.name, query, hits)))
        return
    if not hits:
        typer.echo(f"no passages found in knowledge base {knowledge_base.name}")
    for rank, hit in enumerate(hits, start=1):
        first, second = hit_lines(rank, hit, query)
        typer.secho(first, bold=True)
        typer.echo(second)
