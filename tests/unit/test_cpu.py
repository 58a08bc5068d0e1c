"""CPU-aware dtype: /proc/cpuinfo parsing and the bf16-only-with-native-support rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_app.serving import launch
from rag_app.serving.cpu import choose_dtype, parse_cpu_flags, read_cpu_flags, reported_flags
from rag_app.settings import Settings

# Abridged real /proc/cpuinfo texts (first processor only matters).
AVX2_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
bugs\t\t: sysret_ss_attrs
"""
SKYLAKE_AVX512 = "model name\t: Intel Xeon Gold 6148\nflags\t\t: sse4_2 avx avx2 avx512f avx512bw\n"
COOPER_LAKE = "flags\t\t: avx2 avx512f avx512bw avx512_vnni avx512_bf16\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
AMX_ONLY = "flags\t\t: avx2 avx512f amx_tile\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16\n"


@pytest.mark.parametrize(
    ("cpuinfo", "dtype", "why"),
    [
        (AVX2_EPYC, "float32", "has avx2"),
        (SKYLAKE_AVX512, "float32", "has avx2, avx512f"),
        (COOPER_LAKE, "bfloat16", "avx512_bf16"),
        (SAPPHIRE_RAPIDS, "bfloat16", "avx512_bf16, amx_bf16, amx_tile"),
        (AMX_ONLY, "bfloat16", "amx_tile"),
        (ARM, "float32", "neither avx2 nor avx512f"),
        ("", "float32", "lacks"),
    ],
)
def test_auto_picks_bf16_only_with_native_support(cpuinfo: str, dtype: str, why: str) -> None:
    choice = choose_dtype("auto", parse_cpu_flags(cpuinfo))
    assert choice.dtype == dtype
    assert why in choice.reason


@pytest.mark.parametrize("setting", ["bfloat16", "float32"])
def test_setting_overrides_the_cpu(setting: str) -> None:
    for cpuinfo in (AVX2_EPYC, SAPPHIRE_RAPIDS):
        choice = choose_dtype(setting, parse_cpu_flags(cpuinfo))
        assert choice.dtype == setting and f"llm_dtype={setting}" in choice.reason


def test_gpu_auto_leaves_the_dtype_to_vllm() -> None:
    assert choose_dtype("auto", frozenset(), on_cpu=False).dtype == "auto"


def test_flags_come_from_the_first_processor() -> None:
    flags = parse_cpu_flags(AVX2_EPYC + "\nprocessor\t: 1\nflags\t\t: avx512_bf16\n")
    assert "avx2" in flags and "avx512_bf16" not in flags
    assert reported_flags(flags) == {
        "avx2": True,
        "avx512f": False,
        "avx512_bf16": False,
        "amx_bf16": False,
        "amx_tile": False,
        "amx_int8": False,
    }


def test_unreadable_cpuinfo_counts_as_no_bf16(tmp_path: Path) -> None:
    flags = read_cpu_flags(tmp_path / "missing")
    assert flags == frozenset()
    assert choose_dtype("auto", flags).dtype == "float32"


def test_server_command_carries_the_chosen_dtype(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_dtype="float32")
    command = launch.server_command(settings, tmp_path / "model", "served")
    assert command[command.index("--dtype") + 1] == "float32"
    auto = Settings(data_dir=tmp_path)
    expected = launch.server_dtype(auto).dtype
    command = launch.server_command(auto, tmp_path / "model", "served")
    assert ("--dtype" in command) == (expected != "auto")
