"""CLI: the `rag` console script; each command group lives in rag_app/commands/, calling rag_app."""

from __future__ import annotations

import sys

import typer

from rag_app.commands import answering, database, docs, evaluate, serve, system, ui
from rag_app.errors import RagError

app = typer.Typer(
    name="rag",
    help="Ask questions of your own documents: ingest files, serve an open model with vLLM, "
    "get answers with verified citations, run agents and evaluations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for group in (system, docs, answering, evaluate, ui, serve, database):
    group.register(app)


def main() -> None:
    """Entry point: a RagError becomes one clear line on stderr and exit code 1."""
    try:
        result = app(standalone_mode=False)
    except RagError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None) or getattr(exc, "code", 0) or 0
        sys.exit(code)
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (typer vendors click) carry an exit code
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # empty when help was shown for a bare command group
            typer.secho(f"error: {message} (see `rag --help`)", fg=typer.colors.RED, err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    # without standalone mode click *returns* the code of a raised typer.Exit instead of exiting
    if isinstance(result, int) and not isinstance(result, bool) and result:
        sys.exit(result)


if __name__ == "__main__":
    main()
