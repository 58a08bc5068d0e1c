"""Prompt templates: one Jinja file per prompt in prompts/, loaded by name, strict undefined."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

PROMPT_SUFFIX = ".jinja"


def prompts_dir() -> Path:
    """The shipped prompts/ folder (works from a checkout and from an installed wheel)."""
    return Path(str(resources.files("prompts")))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(prompts_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def prompt_names() -> list[str]:
    return sorted(p.stem for p in prompts_dir().glob(f"*{PROMPT_SUFFIX}"))


def render_prompt(name: str, **variables: object) -> str:
    """Render prompts/<name>.jinja; a missing variable raises instead of rendering blank."""
    try:
        template = _environment().get_template(name + PROMPT_SUFFIX)
    except jinja2.TemplateNotFound as exc:
        raise ValueError(
            f"No prompt named {name!r} in {prompts_dir()}; available: {', '.join(prompt_names())}"
        ) from exc
    return template.render(**variables).strip()
