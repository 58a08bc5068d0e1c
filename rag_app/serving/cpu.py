"""CPU-aware serving: pick vLLM's --dtype from the CPU's flags (used by serving/server.py).

On CPUs without native bf16 arithmetic (AVX2-only hosts, AVX-512 without BF16) vLLM's CPU
backend emulates bf16 and runs several times slower than float32 (3.7x measured: issue 11), so
bf16 is chosen only where the CPU has AVX512-BF16 or AMX.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

CPUINFO = Path("/proc/cpuinfo")
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
# SEE: vllm/envs.py VLLM_CPU_KVCACHE_SPACE: GiB for the KV cache (its default is larger).
KVCACHE_GIB = "2"
SMALL_MACHINE_CORES = 2  # up to this many, the model runs on every core (cpu_server_env)
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
# Recorded by `rag doctor` and bench/serve.py: what decides the speed of CPU inference.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype the local server gets and why."""

    dtype: str  # bfloat16 | float32 | auto (leave it to vLLM)
    reason: str


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """Flags of the first processor in /proc/cpuinfo text (x86 `flags`, Arm `Features`)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def read_cpu_flags(path: Path = CPUINFO) -> frozenset[str]:
    try:
        return parse_cpu_flags(path.read_text(errors="replace"))
    except OSError:  # not Linux, or /proc hidden: treated as a CPU without bf16
        return frozenset()


def reported_flags(flags: frozenset[str]) -> dict[str, bool]:
    return {flag: flag in flags for flag in REPORTED_FLAGS}


def choose_dtype(setting: str, flags: frozenset[str], on_cpu: bool = True) -> DtypeChoice:
    """`setting` (llm_dtype) wins unless it is auto; auto on a CPU looks at the bf16 flags."""
    if setting != "auto":
        return DtypeChoice(setting, f"llm_dtype={setting}")
    if not on_cpu:
        return DtypeChoice("auto", "GPU: vLLM picks the dtype from the model config")
    native = [flag for flag in BF16_FLAGS if flag in flags]
    if native:
        return DtypeChoice("bfloat16", f"CPU has native bf16 ({', '.join(native)})")
    present = ", ".join(flag for flag in ("avx2", "avx512f") if flag in flags)
    return DtypeChoice(
        "float32",
        f"CPU lacks avx512_bf16/amx_bf16/amx_tile (has {present or 'neither avx2 nor avx512f'}): "
        "bf16 would be emulated and several times slower",
    )


def memory_gib(cgroup_max: Path = CGROUP_MEMORY_MAX) -> float:
    """RAM this process may use, in GiB: the machine's, or a container's (cgroup v2) limit."""
    total = psutil.virtual_memory().total
    try:
        limit = cgroup_max.read_text().strip()
    except OSError:  # no cgroup v2 limit file: not in a container, or not Linux
        limit = "max"
    if limit.isdigit():
        total = min(total, int(limit))
    return total / 2**30


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cpu_server_env(cores: int) -> dict[str, str]:
    """Environment defaults for vLLM's CPU backend on a machine with `cores` usable CPUs.

    vLLM keeps one CPU for its HTTP and scheduler processes and runs the model on the others:
    on a 2-core machine, half the compute. Running the model on both cores served 1.7x the
    answers per second (Qwen-1.5B bf16, 1 and 4 users, end to end with retrieval; README
    "Serving"); the frontend's light work then shares the cores. Measured on 2 cores only, so
    larger machines keep vLLM's default. VLLM_CPU_NUM_OF_RESERVED_CPU in the environment wins.
    """
    env = {"VLLM_CPU_KVCACHE_SPACE": KVCACHE_GIB}
    if cores <= SMALL_MACHINE_CORES:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return env
