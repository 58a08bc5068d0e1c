"""Manifest: what a KB was built with (model, dimension, chunker, store); checked on every open."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ingest.atomic import atomic_write_text
from rag_app.errors import KnowledgeBaseError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    store: Literal["faiss", "chroma", "postgres"]
    embedding_model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    created_at: str = ""
    chroma_collection: str | None = None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(kb_dir: Path) -> Manifest | None:
    path = kb_dir / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise KnowledgeBaseError(
            f"{path} is not a valid knowledge base manifest ({exc.__class__.__name__}); "
            f"remove the knowledge base with `rag kb remove {kb_dir.name}` and ingest again"
        ) from exc


def write_manifest(kb_dir: Path, manifest: Manifest) -> None:
    atomic_write_text(kb_dir / MANIFEST_NAME, manifest.model_dump_json(indent=2) + "\n")


def check_compatible(name: str, manifest: Manifest, model: str, dimension: int) -> None:
    """Refuse to mix embedding spaces: vectors from two models are not comparable."""
    if manifest.format_version > FORMAT_VERSION:
        raise KnowledgeBaseError(
            f"knowledge base {name} has format version {manifest.format_version}; this rag_app "
            f"reads up to {FORMAT_VERSION} — upgrade rag_app"
        )
    if manifest.embedding_model != model or manifest.dimension != dimension:
        raise KnowledgeBaseError(
            f"knowledge base {name} was built with {manifest.embedding_model} "
            f"(dim {manifest.dimension}); current embedding model is {model} (dim {dimension}) — "
            f"rebuild with `rag kb remove {name}` then `rag ingest ... --kb {name}`, "
            f"or set RAG_EMBEDDING_MODEL={manifest.embedding_model}"
        )
