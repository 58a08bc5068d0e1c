"""NVIDIA GPUs on this machine, as `nvidia-smi` reports them (no torch import: `rag doctor` and
the GPU tests ask before anything heavy is loaded)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

QUERY = "index,name,memory.total,driver_version"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int
    driver: str


def parse_nvidia_smi(csv_text: str) -> list[Gpu]:
    """Rows of `nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits`."""
    gpus = []
    for line in csv_text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue  # a warning or an empty line, not a device row
        index, name, memory, driver = fields
        gpus.append(Gpu(int(index), name, int(float(memory)) if memory else 0, driver))
    return gpus


def detect_gpus(timeout_s: float = 15.0) -> tuple[list[Gpu], str]:
    """(GPUs, why none) — an empty list with the reason when there is no usable NVIDIA GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return [], "no nvidia-smi on PATH (no NVIDIA driver)"
    try:
        done = subprocess.run(
            [smi, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi failed: {exc}"
    gpus = parse_nvidia_smi(done.stdout)
    if done.returncode != 0 or not gpus:
        last = (done.stderr.strip() or done.stdout.strip() or "no devices").splitlines()[-1]
        return [], f"nvidia-smi reports no GPU ({last})"
    return gpus, ""
