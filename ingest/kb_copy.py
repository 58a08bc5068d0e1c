"""`rag kb copy NAME --to postgres`: move a FAISS (or Chroma) KB into the Postgres store.

The SQLite catalog keeps every chunk's vector next to its text and provenance, so nothing is
re-embedded: documents, chunks and vectors are written into the database in ONE transaction
(all or nothing). Only after it commits does the data dir's manifest switch to postgres; the
old folder is kept under <data_dir>/backups/ until the user deletes it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.catalog import Catalog, NewChunk
from ingest.manifest import read_manifest, write_manifest
from rag_app.errors import KnowledgeBaseError
from rag_app.settings import Settings

BATCH = 1000  # chunks per INSERT batch inside the one transaction


@dataclass(frozen=True)
class CopyReport:
    name: str
    documents: int
    chunks: int
    backup: Path


def copy_to_postgres(name: str, settings: Settings) -> CopyReport:
    """Copy KB `name` of this data dir into the database at settings' database_url."""
    from ingest.kb import check_name
    from ingest.pg_db import database_url
    from ingest.pg_store import PgCatalog, kb_names

    check_name(name)
    kb_dir = settings.kb_dir(name)
    manifest = read_manifest(kb_dir)
    if manifest is not None and manifest.store == "postgres":
        raise KnowledgeBaseError(f"knowledge base {name} is already in Postgres")
    if manifest is None or not (kb_dir / "catalog.sqlite").is_file():
        raise KnowledgeBaseError(f"no FAISS or Chroma knowledge base {name} in {settings.kb_root}")
    url = database_url(settings)
    if name in kb_names(url):
        raise KnowledgeBaseError(
            f"the database already has a knowledge base {name}: remove it there first "
            f"(RAG_STORE=postgres rag kb remove {name}), then copy again"
        )
    source = Catalog(kb_dir / "catalog.sqlite")
    try:
        target = PgCatalog(url, name, manifest.embedding_model, manifest.dimension)
        documents = chunks = 0
        with target.transaction():
            for doc in source.documents():
                vectors, rows = source.vectors(source.source_ids(doc.source))
                if len(rows) != doc.chunks:
                    raise KnowledgeBaseError(
                        f"{doc.source} has {doc.chunks} chunks but {len(rows)} stored vectors in "
                        f"{name}; re-ingest it before copying (nothing was copied)"
                    )
                new = [
                    NewChunk(r.chunk_id, doc.source, int(r.metadata.get("position", i)), r.text,
                             r.metadata, vectors[i])
                    for i, r in enumerate(rows)
                ]  # fmt: skip
                for start in range(0, len(new), BATCH):
                    target.insert_chunks(new[start : start + BATCH])
                target.upsert_document(doc)
                documents, chunks = documents + 1, chunks + len(new)
    finally:
        source.close()
    backup = settings.root / "backups" / f"{name}-{manifest.store}-{time.strftime('%Y%m%d-%H%M%S')}"
    backup.parent.mkdir(parents=True, exist_ok=True)
    os.replace(kb_dir, backup)
    kb_dir.mkdir(parents=True)
    write_manifest(kb_dir, manifest.model_copy(update={"store": "postgres"}))
    return CopyReport(name, documents, chunks, backup)
