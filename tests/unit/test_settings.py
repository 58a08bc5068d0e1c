"""Settings: precedence (init > env > TOML > default), unknown keys refused, sources reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from rag_app.settings import Settings, redact_url, setting_sources, settings_dump


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RAG_* from the developer's shell and no ./rag.toml leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(text)
    monkeypatch.setenv("RAG_CONFIG", str(path))
    return path


def test_defaults_and_derived_paths(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    assert settings.llm_port == 8000
    assert settings.root == (tmp_path / "d").resolve()
    assert settings.models_dir == settings.root / "models"
    assert settings.run_dir == settings.root / "run"
    assert settings.kb_dir("x") == settings.root / "kb" / "x"


def test_env_overrides_toml_and_toml_overrides_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(tmp_path, monkeypatch, 'llm_port = 9001\ntop_k = 7\nkb = "notes"\n')
    monkeypatch.setenv("RAG_TOP_K", "9")
    settings = Settings()
    assert (settings.llm_port, settings.top_k, settings.kb) == (9001, 9, "notes")
    sources = setting_sources(settings)
    assert sources["top_k"] == "env RAG_TOP_K"
    assert sources["llm_port"].startswith("toml ")
    assert sources["fetch_k"] == "default"


def test_init_arguments_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "9")
    assert Settings(top_k=2).top_k == 2


def test_local_rag_toml_is_found(tmp_path: Path) -> None:
    (tmp_path / "rag.toml").write_text("fetch_k = 33\n")
    assert Settings().fetch_k == 33


def test_unknown_toml_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(tmp_path, monkeypatch, "llm_prot = 9001\n")
    with pytest.raises(ValidationError, match="llm_prot"):
        Settings()


def test_unknown_argument_and_bad_value_are_refused() -> None:
    with pytest.raises(ValidationError, match="no_such_setting"):
        Settings(no_such_setting=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="llm_port"):
        Settings(llm_port=70000)


def test_env_list_value_parses_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_EXTRA_ARGS", '["--tensor-parallel-size", "2"]')
    assert Settings().llm_extra_args == ["--tensor-parallel-size", "2"]


def test_dump_masks_the_api_key() -> None:
    dumped = settings_dump(Settings(llm_api_key="sk-secret"))  # type: ignore[arg-type]
    assert dumped["llm_api_key"] == "***"
    assert "sk-secret" not in str(dumped)


def test_every_field_has_a_description() -> None:
    missing = [name for name, f in Settings.model_fields.items() if not f.description]
    assert missing == []


def test_readme_settings_table_is_current() -> None:
    """README's table is generated from the field descriptions; regenerate it when they change."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(repo / "scripts" / "settings_table.py")],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_database_url_password_is_never_shown() -> None:
    url = "postgresql://rag:pa%40ss@db.example:5432/rag"
    assert redact_url(url) == "postgresql://rag:***@db.example:5432/rag"
    assert redact_url("postgresql://db.example/rag") == "postgresql://db.example/rag"
    dumped = settings_dump(Settings(store="postgres", database_url=SecretStr(url)))
    assert dumped["database_url"] == "postgresql://rag:***@db.example:5432/rag"
    assert "pa%40ss" not in repr(Settings(database_url=SecretStr(url)))
