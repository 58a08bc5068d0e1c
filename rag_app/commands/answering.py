"""CLI commands (answering): `rag ask` and `rag chat`, streaming answers with verified sources.

Heavy imports (torch, langchain) stay inside the command functions so `rag --help` is fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest.kb import KnowledgeBase
    from rag_app.answering.history import History
    from rag_app.records import Answer, Mode
    from rag_app.settings import Settings

KbOption = Annotated[
    str | None, typer.Option("--kb", help="Knowledge base name (default: settings.kb).")
]
ModeOption = Annotated[
    str,
    typer.Option(
        "--mode",
        "-m",
        help="direct: short grounded answer; cot: reasons first (shown apart); "
        "cited: answer with \\[n] markers; agent: plans and uses tools for multi-part questions.",
    ),
]
TopKOption = Annotated[
    int | None, typer.Option("-k", "--top-k", min=1, help="Passages given to the model.")
]
QUOTE_CHARS = 240
OBSERVATION_CHARS = 160


def _settings(top_k: int | None) -> Settings:
    from rag_app.settings import get_settings

    settings = get_settings()
    return settings.model_copy(update={"top_k": top_k}) if top_k else settings


def _check_mode(mode: str) -> Mode:
    if mode not in ("direct", "cot", "cited", "agent"):
        raise typer.BadParameter(f"{mode!r}; use direct, cot, cited or agent", param_hint="--mode")
    return mode  # type: ignore[return-value]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_trace(answer: Answer) -> None:
    """The agent's plan and steps (thought, action, input, observation)."""
    if answer.plan:
        typer.secho("Plan:", bold=True)
        for n, item in enumerate(answer.plan, 1):
            typer.echo(f"  {n}. {item}")
    for step in answer.steps:
        typer.secho(f"Step {step.index}: {step.action}({_short(step.action_input, 80)})", bold=True)
        if step.thought:
            typer.echo(f"  thought: {_short(step.thought, OBSERVATION_CHARS)}")
        typer.echo(f"  observation: {_short(step.observation, OBSERVATION_CHARS)}")
        if step.error:
            typer.secho(f"  error: {step.error}", fg=typer.colors.RED)


def print_sources(answer: Answer) -> None:
    """Numbered sources with page/section and the quoted supporting span, then the scores."""
    if answer.citations:
        typer.secho("Sources:", bold=True)
        for c in answer.citations:
            where = f", page {c.page}" if c.page else ""
            where += f", {c.section}" if c.section else ""
            typer.echo(f"  [{c.marker}] {c.source}{where}")
            typer.echo(f'      "{_short(c.quote, QUOTE_CHARS)}"')
        typer.echo(f"Support score: {answer.support_score:.2f}")
    elif answer.abstained and answer.related:
        typer.secho("Closest passages (related, not an answer):", bold=True)
        for n, hit in enumerate(answer.related, 1):
            page = f", page {hit.chunk.page}" if hit.chunk.page else ""
            typer.echo(f"  ({n}) {hit.chunk.source}{page}: {_short(hit.chunk.text, 160)}")
    if answer.message:
        typer.secho(answer.message, fg=typer.colors.YELLOW)


def stream_to_terminal(
    question: str,
    kb: str | KnowledgeBase | None,
    mode: Mode,
    history: History,
    settings: Settings,
    llm: BaseChatModel | None = None,
) -> Answer:
    """Stream the draft answer's tokens, then print the verified answer and its sources."""
    from rag_app.pipeline import ask_stream
    from rag_app.records import DRAFT_RESTART, Answer

    draft, final = "", None
    for item in ask_stream(question, kb, mode, history, settings, llm):
        if isinstance(item, Answer):
            final = item
        else:
            if item == DRAFT_RESTART and draft:  # a second try, over wider passages
                typer.secho("\nDraft (unverified, wider context): ", dim=True, nl=False)
                draft += item
                continue
            if not draft:  # the model's words stream as a draft; the verdict below decides
                typer.secho("Draft (unverified): ", dim=True, nl=False)
            draft += item
            typer.secho(item, dim=True, nl=False)
            sys.stdout.flush()
    assert final is not None
    if draft:
        typer.echo()
    if final.reasoning:
        typer.secho(f"Reasoning: {final.reasoning}", dim=True)
    print_trace(final)
    print_verdict(final)
    print_sources(final)
    return final


VERDICT_LABELS = {
    "confident": ("Answer: ", typer.colors.GREEN),
    "tentative": ("Tentative answer: ", typer.colors.YELLOW),
    "abstained": ("No answer: ", typer.colors.RED),
}


def print_verdict(answer: Answer) -> None:
    """One labelled line that cannot be misread: answer, tentative answer, or no answer."""
    label, colour = VERDICT_LABELS[answer.kind]
    typer.secho(label, bold=True, fg=colour, nl=False)
    typer.secho(answer.display_text(), bold=True)
    if answer.p_correct is not None:
        typer.secho(f"Estimated chance this is right: {answer.p_correct:.0%}", dim=True)


def ask(
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    kb: KbOption = None,
    mode: ModeOption = "direct",
    top_k: TopKOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full Answer as one JSON document.")
    ] = False,
) -> None:
    """Ask one question of a knowledge base: a grounded answer with numbered, verified sources.

    When the documents do not contain the answer you get the abstention phrase and the closest
    passages instead of a guess.
    """
    from rag_app.pipeline import check_question

    question = check_question(question)  # an empty question fails here, before any loading
    settings, checked = _settings(top_k), _check_mode(mode)
    from ingest.embed import limit_threads

    limit_threads(settings)
    if as_json:
        from rag_app.pipeline import ask as ask_once

        answer = ask_once(question, kb, checked, None, settings)
        typer.echo(json.dumps(answer.model_dump(mode="json"), ensure_ascii=False))
        return
    stream_to_terminal(question, kb, checked, [], settings)


def chat(kb: KbOption = None, mode: ModeOption = "direct", top_k: TopKOption = None) -> None:
    """Interactive session with history: follow-ups like "and when was it built?" work.

    Reads one question per line from stdin until end of input or `exit`.
    """
    from ingest.embed import limit_threads
    from ingest.kb import open_kb
    from rag_app.serving.llm import chat_model

    settings, checked = _settings(top_k), _check_mode(mode)
    limit_threads(settings)
    # Opened once for the session: re-reading the index and re-probing the server every turn
    # cost ~0.3-1.4 s per question (bench/profile_answer.py, "by name" vs "reuse").
    base, llm = open_kb(kb, settings=settings), chat_model(settings)
    history: History = []
    interactive = sys.stdin.isatty()
    if interactive:
        typer.echo("Ask a question (empty line or `exit` to quit).")
    while True:
        if interactive:
            typer.echo("> ", nl=False)
        line = sys.stdin.readline()
        question = line.strip()
        if not line or question.lower() in ("exit", "quit") or (interactive and not question):
            return
        if not question:
            continue
        answer = stream_to_terminal(question, base, checked, history, settings, llm)
        history += [("user", question), ("assistant", answer.text)]
        typer.echo()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rag` app."""
    app.command("ask")(ask)
    app.command("chat")(chat)
