"""Walk: the PATH arguments of `rag ingest` -> the files to load, plus what was skipped and why."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.load import LOADERS, is_supported


@dataclass
class Walk:
    roots: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    missing: list[tuple[str, str]] = field(default_factory=list)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _walk_dir(root: Path) -> list[Path]:
    """Files under root, sorted; hidden files and folders (.git, .venv, ...) are not walked."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return found


def walk_paths(
    paths: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Walk:
    """Expand files and folders; include/exclude globs match the path relative to its root."""
    walk = Walk()
    seen: set[Path] = set()
    supported = ", ".join(sorted(LOADERS))
    for raw in paths:
        root = Path(raw).expanduser().absolute()
        if not root.exists():
            walk.missing.append((str(root), "path does not exist"))
            continue
        root = root.resolve()
        walk.roots.append(root)
        candidates = [root] if root.is_file() else _walk_dir(root)
        for path in candidates:
            rel = path.name if path == root else path.relative_to(root).as_posix()
            if path in seen or (include and not _matches(rel, include)):
                continue
            if exclude and _matches(rel, exclude):
                continue
            seen.add(path)
            if is_supported(path):
                walk.files.append(path)
            else:
                reason = f"unsupported file type {path.suffix or '(no extension)'!r}"
                walk.skipped.append((str(path), f"{reason}; supported: {supported}"))
    return walk
