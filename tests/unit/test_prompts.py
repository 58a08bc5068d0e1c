"""Every prompt in prompts/ renders with plausible variables; a missing variable fails loudly."""

from __future__ import annotations

from typing import Any

import jinja2
import jinja2.meta
import pytest

from rag_app.prompts import PROMPT_SUFFIX, prompt_names, prompts_dir, render_prompt

NAMES = prompt_names()


class Sample:
    """Stands in for any variable: a string, a list of records, a record, a pair or a number.

    Templates are discovered, not listed, so the test cannot know each variable's shape; this
    value renders visibly as <path> whatever a template does with it (attribute, index, loop).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __str__(self) -> str:
        return f"<{self.path}>"

    def __getattr__(self, name: str) -> Sample:
        if name.startswith("__"):
            raise AttributeError(name)
        return Sample(f"{self.path}.{name}")

    def __getitem__(self, key: object) -> Sample:
        return Sample(f"{self.path}[{key}]")

    def __iter__(self) -> Any:
        return iter([Sample(f"{self.path}[0]"), Sample(f"{self.path}[1]")])

    def __len__(self) -> int:
        return 2


def variables_of(name: str) -> set[str]:
    source = (prompts_dir() / f"{name}{PROMPT_SUFFIX}").read_text()
    return jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source))


def test_prompts_are_discovered() -> None:
    assert NAMES, f"no *{PROMPT_SUFFIX} files found in {prompts_dir()}"


@pytest.mark.parametrize("name", NAMES)
def test_prompt_renders_with_plausible_variables(name: str) -> None:
    variables = {var: Sample(var) for var in variables_of(name)}
    text = render_prompt(name, **variables)
    assert text.strip(), f"prompt {name} rendered empty"
    assert "Sample object" not in text
    if "question" in variables:
        assert "<question>" in text, f"prompt {name} never shows the question"


@pytest.mark.parametrize("name", [n for n in NAMES if variables_of(n)])
def test_prompt_refuses_a_missing_variable(name: str) -> None:
    for missing in sorted(variables_of(name)):
        variables = {var: Sample(var) for var in variables_of(name) if var != missing}
        with pytest.raises(jinja2.UndefinedError):
            render_prompt(name, **variables)


def test_unknown_prompt_names_the_folder() -> None:
    with pytest.raises(ValueError, match="No prompt named 'no_such_prompt'"):
        render_prompt("no_such_prompt")
