"""Model provisioning: path validation, corrupt GGUF errors, chat-template check, cache keying."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from rag_app.errors import ModelError
from rag_app.serving.model import (
    MARKER,
    check_gguf_header,
    default_gguf_path,
    find_prepared,
    has_chat_template,
    prepare_model,
    prepared_path,
    served_name_for,
    sha256_file,
)
from rag_app.settings import Settings


def gguf_header(version: int = 3, tensors: int = 1, fields: int = 1) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, fields)


def hf_folder(root: Path, template: bool) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    config = {"chat_template": "{{ messages }}"} if template else {}
    (root / "tokenizer_config.json").write_text(json.dumps(config))
    return root


def test_default_gguf_is_found_in_the_wheel() -> None:
    path = default_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    check_gguf_header(path)  # the real file passes the header check


def test_missing_model_path_names_the_path(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelError, match=r"nope\.gguf.*does not exist"):
        prepare_model(settings, str(missing))


def test_non_gguf_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x" * 100)
    with pytest.raises(ModelError, match="not a .gguf file"):
        prepare_model(settings, str(weights))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04 this is a zip, not a model", "bad magic"),
        (gguf_header(tensors=0), "corrupt GGUF header"),
        (gguf_header(version=99), "corrupt GGUF header"),
    ],
)
def test_corrupt_gguf_header_is_one_clear_error(
    settings: Settings, tmp_path: Path, content: bytes, message: str
) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(content)
    with pytest.raises(ModelError, match=message) as info:
        prepare_model(settings, str(bogus))
    assert "bogus.gguf" in str(info.value)
    assert "\n" not in str(info.value)
    assert not settings.models_dir.exists() or not any(settings.models_dir.iterdir())


@pytest.mark.slow
def test_truncated_gguf_fails_conversion_cleanly(settings: Settings, tmp_path: Path) -> None:
    """A plausible header over garbage: transformers' own error becomes one ModelError line."""
    bogus = tmp_path / "truncated.gguf"
    bogus.write_bytes(gguf_header(tensors=3, fields=2) + b"\x00" * 64)
    with pytest.raises(ModelError, match=r"cannot convert .*truncated\.gguf"):
        prepare_model(settings, str(bogus))
    leftovers = list(settings.models_dir.iterdir()) if settings.models_dir.exists() else []
    assert leftovers == []  # the temp folder was removed, nothing half-written is kept


def test_hf_folder_is_served_as_is(settings: Settings, tmp_path: Path) -> None:
    folder = hf_folder(tmp_path / "My-Model", template=True)
    prepared = prepare_model(settings, str(folder))
    assert prepared.path == folder.resolve()
    assert prepared.served_name == "my-model"
    assert find_prepared(settings, str(folder)) == folder.resolve()


def test_hf_folder_without_chat_template_is_refused(settings: Settings, tmp_path: Path) -> None:
    folder = hf_folder(tmp_path / "base-model", template=False)
    assert not has_chat_template(folder)
    with pytest.raises(ModelError, match="no chat template"):
        prepare_model(settings, str(folder))


def test_folder_without_config_is_refused(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        prepare_model(settings, str(tmp_path / "empty"))


def test_conversion_is_keyed_by_sha256_and_reused(settings: Settings, tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(gguf_header() + b"payload")
    target = prepared_path(settings, gguf)
    assert target == settings.models_dir / sha256_file(gguf)[:16]
    assert find_prepared(settings, str(gguf)) is None
    hf_folder(target, template=True)
    (target / MARKER).write_text("{}")  # what a finished conversion leaves behind
    prepared = prepare_model(settings, str(gguf))
    assert (prepared.path, prepared.reused, prepared.served_name) == (target, True, "tiny")
    gguf.write_bytes(gguf_header() + b"changed")  # new content -> new key -> not prepared
    assert find_prepared(settings, str(gguf)) is None


def test_served_name_setting_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_served_name="custom")
    assert served_name_for(tmp_path / "X.Q4.gguf", settings) == "custom"
    assert served_name_for(default_gguf_path(), Settings(data_dir=tmp_path)) == (
        "smollm2-135m-instruct"
    )
