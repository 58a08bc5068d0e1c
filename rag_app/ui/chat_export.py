"""UI chat export: a stored chat as Markdown, with each answer's kind, citations and quotes."""

from __future__ import annotations

from rag_app.records import Answer
from rag_app.ui.chat_store import Turn
from rag_app.ui.text import location, short_source


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().split("\n"))


def _answer_md(answer: Answer) -> list[str]:
    if answer.abstained:
        lines = ["**I don't know** — no answer could be found and checked in the documents."]
    elif answer.kind == "tentative":
        lines = [f"**Probably {answer.text.strip()} — not verified**"]
    else:
        lines = [answer.text.strip()]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            where = location(c.page, c.section)
            lines.append(
                f"- [{c.marker}] {short_source(c.source)}" + (f" ({where})" if where else "")
            )
            lines.append("")
            lines.append("  " + _quote(c.quote).replace("\n", "\n  "))
    return lines


def chat_markdown(title: str, kb: str, turns: list[Turn]) -> str:
    """The conversation as a Markdown document (questions as headings, answers with sources)."""
    out = [f"# {title}", "", f"Knowledge base: {kb}", ""]
    for turn in turns:
        if turn.role == "user":
            out += [f"## Q: {turn.text.strip()}", ""]
        elif turn.error:
            out += [f"*Error: {turn.error}*", ""]
        elif turn.answer is not None:
            out += [*_answer_md(turn.answer), ""]
        else:
            out += [turn.text.strip(), ""]
    return "\n".join(out).rstrip() + "\n"
