"""FAISS store: vectors in a FAISS index with int64 ids, rows in SQLite (no LangChain here).

Knowledge bases write and search through this class; `ingest/faiss_langchain.py` wraps it in
LangChain's VectorStore interface for API and Python users (importing langchain_core.vectorstores
costs ~0.8 s, which a one-file `rag ingest` must not pay). The catalog (SQLite) holds texts,
metadata and the vectors themselves; the FAISS file is a derived index saved atomically as
`index.<revision>.faiss`. If it lags the catalog (a crash between the two), `refresh()`
reconciles it from the stored vectors: no re-embedding, no pickle.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from ingest.atomic import fsync_dir, remove_orphan_temps
from ingest.catalog import Catalog, NewChunk, StoredChunk
from ingest.embed_cache import normalise
from rag_app.settings import Settings

# faiss's bundled type stubs miss most of its SWIG API (IndexIDMap2.id_map, selectors, ...).
faiss: Any = importlib.import_module("faiss")

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
# HNSW cannot remove vectors. Deleted ids are masked at search time instead, and the graph is
# rebuilt from the stored vectors only once they are this share of it: re-ingesting one changed
# file in a 1M-chunk KB must not cost a full rebuild (minutes on 2 cores).
MAX_DEAD_SHARE = 0.2


def build_faiss_index(dim: int, n: int, settings: Settings | None = None) -> Any:
    """The (empty) index for `n` vectors: exact inner product, or HNSW above ann_threshold.

    Vectors are L2-normalised, so inner product is cosine similarity. The single place to tune.
    """
    default = Settings.model_fields["ann_threshold"].default
    threshold = settings.ann_threshold if settings is not None else default
    if n > threshold:
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(inner)
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def is_hnsw(index: Any) -> bool:
    return isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW)


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """Serialise index access: the UI searches from several threads while an upload writes."""

    @functools.wraps(method)
    def wrapper(self: FaissStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


def _as_ids(ids: Iterable[int]) -> np.ndarray:
    return np.fromiter((int(i) for i in ids), dtype=np.int64)


class FaissStore:
    """A persistent (or, with path=None, in-memory) FAISS + SQLite vector store."""

    def __init__(
        self,
        path: Path | None = None,
        catalog: Catalog | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.dir = path
        self.settings = settings
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        self.catalog: Catalog = catalog or Catalog(path / "catalog.sqlite" if path else None)
        self.index: Any | None = None
        self.synced = 0  # catalog revision the in-memory index reflects
        self.dead = np.zeros(0, np.int64)  # ids still in the HNSW graph but deleted (sorted)
        self._lock = threading.RLock()
        self._load()
        self.refresh()

    # --- persistence --------------------------------------------------------------------------
    def _index_files(self) -> list[tuple[int, Path]]:
        if self.dir is None:
            return []
        found = []
        for p in self.dir.glob("index.*.faiss"):
            rev = p.name.split(".")[1]
            if rev.isdigit():
                found.append((int(rev), p))
        return sorted(found)

    def _load(self) -> None:
        files = self._index_files()
        if files:
            rev, path = files[-1]
            self.index = faiss.read_index(str(path))
            if is_hnsw(self.index):
                faiss.downcast_index(self.index.index).hnsw.efSearch = HNSW_EF_SEARCH
                in_index = faiss.vector_to_array(self.index.id_map).astype(np.int64)
                self.dead = np.setdiff1d(in_index, self.catalog.all_ids())  # masked deletes
            self.synced = rev

    @_locked
    def persist(self) -> None:
        """Write the index atomically (temp + fsync + rename) tagged with its catalog revision."""
        if self.dir is None or self.index is None:
            return
        final = self.dir / f"index.{self.synced}.faiss"
        tmp = self.dir / f".index.{self.synced}.{os.getpid()}.tmp"
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(self.dir)
        for rev, old in self._index_files():
            if rev != self.synced:
                old.unlink(missing_ok=True)
        remove_orphan_temps(self.dir, ".index.*.tmp")

    # --- keeping the index in step with the catalog -------------------------------------------
    @_locked
    def refresh(self) -> None:
        """Reconcile the in-memory index with the catalog if another write moved it on."""
        revision = self.catalog.revision()
        if revision == self.synced and self.index is not None:
            return
        in_catalog = self.catalog.all_ids()
        in_index = (
            faiss.vector_to_array(self.index.id_map).astype(np.int64)
            if self.index is not None
            else np.zeros(0, np.int64)
        )
        stale = np.setdiff1d(in_index, in_catalog)
        missing = np.setdiff1d(in_catalog, in_index)
        if self.index is not None and len(stale) and self._remove(stale):
            missing = np.zeros(0, np.int64)  # the rebuild read every stored vector
        self._add_stored(missing)
        self.synced = revision
        self._maybe_upgrade()  # another process's writes may have grown the KB past the threshold

    def _add_stored(self, ids: np.ndarray) -> None:
        for start in range(0, len(ids), 10_000):
            vectors, rows = self.catalog.vectors(ids[start : start + 10_000].tolist())
            if rows:
                self._index_add(vectors, _as_ids(r.id for r in rows), total=len(ids))

    def _index_add(self, vectors: np.ndarray, ids: np.ndarray, total: int = 0) -> None:
        """Add vectors; a new index is sized for `total` (all ids being added), not this slice."""
        if self.index is None:
            self.index = build_faiss_index(vectors.shape[1], max(total, len(ids)), self.settings)
            self.dead = np.zeros(0, np.int64)
        self.index.add_with_ids(normalise(vectors), ids)

    def _remove(self, ids: np.ndarray) -> bool:
        """Drop ids: exact index for real, HNSW masked until a rebuild. True if it rebuilt."""
        assert self.index is not None
        if not is_hnsw(self.index):
            self.index.remove_ids(ids)
            return False
        self.dead = np.union1d(self.dead, ids)
        if len(self.dead) <= MAX_DEAD_SHARE * self.index.ntotal:
            return False
        self.index, self.dead = None, np.zeros(0, np.int64)
        self._add_stored(self.catalog.all_ids())
        return True

    def _maybe_upgrade(self) -> None:
        """Switch to HNSW once the KB grows past ann_threshold (rebuilt from stored vectors)."""
        if self.index is None or is_hnsw(self.index):
            return
        wanted = build_faiss_index(self.index.d, self.index.ntotal, self.settings)
        if is_hnsw(wanted):
            self.index = None
            self._add_stored(self.catalog.all_ids())

    @_locked
    def apply(
        self,
        removed: Sequence[tuple[int, str]],
        added: Sequence[tuple[int, NewChunk]],
        revisions: tuple[int, int],
    ) -> None:
        """Mirror one committed catalog transaction (revisions = before, after) in the index."""
        if self.synced != revisions[0]:
            self.refresh()  # someone else wrote in between: reconcile covers this write too
            return
        rebuilt = (
            bool(removed)
            and self.index is not None
            and self._remove(_as_ids(i for i, _ in removed))
        )
        if added and not rebuilt:  # a rebuild read this transaction's rows from the catalog
            vectors = np.vstack([c.vector for _, c in added])
            self._index_add(vectors, _as_ids(i for i, _ in added))
        self.synced = revisions[1]
        self._maybe_upgrade()

    @_locked
    def search_vector(
        self, vector: np.ndarray, k: int, source: str | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Top-k rows by cosine similarity (higher is better), optionally within one source."""
        self.refresh()
        if self.index is None or self.index.ntotal == 0 or k <= 0:
            return []
        sel = None
        if source is not None:  # the catalog lists live ids only: no mask needed on top
            allowed = _as_ids(self.catalog.source_ids(source))
            if not len(allowed):
                return []
            sel = faiss.IDSelectorBatch(allowed)
        elif len(self.dead):
            masked = faiss.IDSelectorBatch(self.dead)  # a local: SWIG's Not does not own it
            sel = faiss.IDSelectorNot(masked)
        params = None
        if sel is not None:
            params = (
                faiss.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, k))
                if is_hnsw(self.index)
                else faiss.SearchParameters(sel=sel)
            )
        query = normalise(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        scores, ids = self.index.search(query, min(k, self.index.ntotal), params=params)
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        rows = self.catalog.by_ids([i for i, _ in found])
        return [(rows[i], s) for i, s in found if i in rows]
