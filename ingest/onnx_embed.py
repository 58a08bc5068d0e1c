"""ONNX embeddings: a sentence-transformers model exported once, then run with onnxruntime.

Importing sentence-transformers costs ~8 s (torch, transformers); onnxruntime and tokenizers
~0.3 s. So the first process that loads the model through sentence-transformers (normally the
first ingest) exports it to `data_dir/models/embed-onnx-<key>/`, and later processes (search,
ask, chat, UI, eval) embed with that export instead. An export is published only after its
vectors matched sentence-transformers' on probe texts (cosine >= MIN_COSINE), so the two paths
are interchangeable and a KB's manifest names the same model for both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ingest.atomic import _alive as pid_alive
from ingest.atomic import fsync_dir
from ingest.chunk import TokenSpans, tokenizers_token_spans
from ingest.embed_cache import CachedEmbeddings, model_dimension, normalise
from rag_app.settings import Settings

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the export's layout or graph changes: old exports are then ignored
SPEC_FILE = "embed.json"
MIN_COSINE = 0.999
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
# The int8 variant embeds documents only (queries keep full precision). Per-channel int8 MatMul
# weights keep the vectors within cosine ~0.99 of fp32 (bench/embed_int8.py measures what that
# does to retrieval on SciFact); a variant below this on the probe texts is not used.
MIN_INT8_COSINE = 0.98
POOLINGS = ("mean", "cls", "max")
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Varied on purpose: padding within a batch, punctuation, non-ASCII, and one text longer than
# any max_seq_length so truncation is checked too.
PROBE_TEXTS = [
    "The lighthouse was first lit on 12 March 1874.",
    "  Who designed the Kestrel Bridge?  ",
    "Ærøskøbing färja — över Öresund; naïve café, 東京の渡し船, Ελληνικά.",
    "x",
    " ".join(f"Sentence {i} talks about ferries, bridges and orchards." for i in range(120)),
]


def export_key(source: Path) -> str:
    """Key of a model folder from each file's path, size and mtime: changes when any file does,
    and costs no read of the weights (hashing 90 MB at every query would cost ~0.1 s)."""
    digest = hashlib.sha256(f"format={FORMAT}".encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts):
            continue  # .git, .cache: not the model
        stat = path.stat()
        digest.update(f"\0{rel}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def export_dir(settings: Settings, source: Path) -> Path:
    return settings.models_dir / f"embed-onnx-{export_key(source)}"


def find_export(settings: Settings, target: str) -> Path | None:
    """The published export for this model folder, or None (not exported, or a hub name)."""
    source = Path(target)
    if not source.is_dir():
        return None
    folder = export_dir(settings, source)
    return folder if (folder / SPEC_FILE).is_file() else None


class OnnxEmbeddings(CachedEmbeddings):
    """LangChain Embeddings over an exported model: tokenizers + onnxruntime, pooled and
    L2-normalised exactly as the model's sentence-transformers modules say."""

    def __init__(
        self,
        folder: Path,
        model_name: str,
        batch_size: int,
        threads: int = 0,
        cache_size: int | None = None,
        graph: str = FP32_FILE,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        super().__init__(model_name, batch_size, int(spec["dimension"]), cache_size)
        self.folder = folder
        self.spec = spec
        self.int8 = graph != FP32_FILE  # the quantised variant (documents only)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: a CLI prints no graph-optimiser notes
        if threads > 0:  # answering shares the cores with vLLM (see embed.limit_threads)
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(folder / graph), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json may carry its own limits (MiniLM's says 128 and fixed padding):
        # sentence-transformers truncates at max_seq_length and pads to the longest text.
        tokenizer.enable_truncation(int(spec["max_seq_length"]))
        tokenizer.enable_padding(pad_id=int(spec["pad_id"]), pad_token=str(spec["pad_token"]))
        self._tokenizer = tokenizer

    @cached_property
    def token_spans(self) -> TokenSpans:
        """Token spans for chunking, read from the export's tokenizer.json with `tokenizers`:
        the chunks of the model's own tokenizer, but a one-file ingest skips transformers."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_truncation()  # a section is tokenised whole; the chunker bounds it
        tokenizer.no_padding()
        return tokenizers_token_spans(tokenizer)

    @cached_property
    def tokenizer(self) -> Any:
        """The Hugging Face fast tokenizer (imports transformers; chunking uses token_spans)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.folder))

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.spec.get("do_lower_case"):
            texts = [t.lower() for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # less padding per batch
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed_batch([texts[i] for i in rows])
        self.encoded += len(texts)
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }  # the keys are ONNX_INPUTS; the graph takes those its tokenizer produces
        tokens = self.session.run(None, {n: arrays[n] for n in self.input_names})[0]
        return normalise(pool(tokens, mask, self.spec["pooling"]))


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """(batch, seq, dim) token embeddings -> (batch, dim), padding excluded."""
    if mode == "cls":
        return tokens[:, 0]
    weights = mask[:, :, None].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, tokens, -1e9).max(axis=1)
    return (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def export_spec(model: Any) -> dict[str, Any] | None:
    """What the export must reproduce, or None for a model it cannot (extra modules, prompts)."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    transformer, pooling = modules[0], modules[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode not in POOLINGS or getattr(model, "default_prompt_name", None):
        return None
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False) or tokenizer.pad_token is None:
        return None
    return {
        "format": FORMAT,
        "dimension": model_dimension(model),
        "max_seq_length": int(model.max_seq_length),
        "pooling": mode,
        "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
        "pad_id": int(tokenizer.pad_token_id),
        "pad_token": str(tokenizer.pad_token),
    }


def export_onnx(model: Any, target: str, settings: Settings) -> Path | None:
    """Export a loaded SentenceTransformer for `target` (a model folder) once; the published
    folder, or None when the model cannot be exported or the export's vectors do not match."""
    source = Path(target)
    spec = export_spec(model) if source.is_dir() else None
    if spec is None:
        return None
    final = export_dir(settings, source)
    if (final / SPEC_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_exports(final.parent)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_export(model, spec, tmp)
        cosine = _agreement(model, tmp)
        if cosine < MIN_COSINE:
            log.warning("ONNX export of %s disagrees (cosine %.5f): not used", target, cosine)
            return None
        os.rename(tmp, final)  # atomic publish; fails if another process published first
        fsync_dir(final.parent)
    except OSError:
        if not (final / SPEC_FILE).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_export(model: Any, spec: dict[str, Any], folder: Path) -> None:
    import torch

    folder.mkdir(parents=True)
    tokenizer = model.tokenizer
    tokenizer.save_pretrained(str(folder))
    names = [n for n in ONNX_INPUTS if n in tokenizer.model_input_names]
    # A padded batch: the traced graph must keep the attention-mask path.
    sample = tokenizer(PROBE_TEXTS[:2], padding=True, truncation=True, return_tensors="pt")

    class Backbone(torch.nn.Module):
        """The transformer with positional inputs (what torch.onnx traces); token embeddings out."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model[0].auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True)))[0]

    backbone = Backbone().eval()
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "token_embeddings"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notes: the check below decides
        torch.onnx.export(
            backbone,
            tuple(sample[n] for n in names),
            str(folder / FP32_FILE),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs only `onnx`, not onnxscript
        )
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def _agreement(model: Any, folder: Path) -> float:
    """Lowest cosine between sentence-transformers' and the export's vectors on PROBE_TEXTS."""
    expected = model.encode(
        PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    got = OnnxEmbeddings(folder, "probe", batch_size=4, cache_size=0).embed_array(PROBE_TEXTS)
    return float(np.min(np.sum(normalise(np.asarray(expected)) * got, axis=1)))


def quantize_export(folder: Path) -> Path | None:
    """The int8 variant of a published export (made once, beside model.onnx), or None when
    onnxruntime cannot quantise it or its vectors stray too far from fp32 (MIN_INT8_COSINE).

    Dynamic quantisation of the MatMul weights, per output channel: measured on MiniLM it gave
    1.6-1.8x the fp32 throughput at cosine >= 0.99; per-tensor weights were faster to make but fell
    to cosine 0.87, and quantising the other ops too gave no speed-up.
    """
    final = folder / INT8_FILE
    if final.is_file():
        return final
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    for orphan in folder.glob(".*.tmp"):  # left by a quantiser that was killed
        pid = orphan.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not pid_alive(int(pid)):
            orphan.unlink(missing_ok=True)
    tmp = folder / f".{INT8_FILE}.{os.getpid()}.tmp"
    prepared = folder / f".prepared.{os.getpid()}.tmp"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # graph optimisation first, as onnxruntime's quantisation guide says (the symbolic
            # shape pass does not finish on BERT graphs and is not needed for dynamic int8)
            quant_pre_process(str(folder / FP32_FILE), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(
                str(prepared),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        cosine = _int8_agreement(folder, tmp)
        if cosine < MIN_INT8_COSINE:
            log.warning("int8 variant of %s disagrees (cosine %.4f): not used", folder, cosine)
            return None
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)  # atomic publish: a reader sees no file or the whole file
        fsync_dir(folder)
        return final
    except Exception as exc:  # an optional speed-up: fp32 ingestion still works
        log.warning("cannot make the int8 variant of %s: %s", folder, exc)
        return None
    finally:
        tmp.unlink(missing_ok=True)
        prepared.unlink(missing_ok=True)


def _int8_agreement(folder: Path, graph: Path) -> float:
    """Lowest cosine between the fp32 export's and the quantised graph's vectors on PROBE_TEXTS."""
    fp32 = OnnxEmbeddings(folder, "probe", batch_size=4, cache_size=0).embed_array(PROBE_TEXTS)
    trial = OnnxEmbeddings(folder, "probe", batch_size=4, cache_size=0, graph=graph.name)
    return float(np.min(np.sum(fp32 * trial.embed_array(PROBE_TEXTS), axis=1)))


def remove_orphan_exports(models_dir: Path) -> None:
    """Delete temp export folders (.NAME.PID.tmp) whose writer was killed."""
    for tmp in models_dir.glob(".embed-onnx-*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
