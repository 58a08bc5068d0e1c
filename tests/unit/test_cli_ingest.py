"""`rag ingest`: exit codes as its --help says, nothing created for nothing, duplicates reported,
progress bars only on a terminal, library warnings in the log and one report line per file."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag_app.commands import ingesting
from rag_app.commands.ingesting import exit_code, print_summary, run_ingest
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT, SAMPLES_DIR
from tests.fakes import HashingEmbeddings


def rag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "rag_app.cli", *args],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip


def test_unsupported_only_exits_1_and_creates_nothing(tmp_path: Path) -> None:
    notes = tmp_path / "notes.xyz"
    notes.write_text("not a format we read")
    text = rag(tmp_path, "ingest", str(notes))
    assert text.returncode == 1, text.stderr
    assert f"skipped {notes}: unsupported file type '.xyz'" in text.stdout
    as_json = rag(tmp_path, "ingest", str(notes), "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["added"] == 0 and [s["source"] for s in report["skipped"]] == [str(notes)]
    assert not (tmp_path / "data").exists()  # no KB folder, no catalog, no manifest
    assert rag(tmp_path, "ingest").returncode == 2  # usage error, as --help says


def test_exit_codes_and_no_kb_left_when_nothing_was_added(
    settings: Settings, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    failed = run_ingest([empty], "t", settings, embeddings=HashingEmbeddings())
    assert [f.reason for f in failed.failed] == ["empty file"] and exit_code(failed) == 1
    assert not settings.kb_dir("t").exists()  # opened to load the file, removed again
    original = shutil.copy(SAMPLES_DIR / "kestrel_bridge.txt", tmp_path / "kestrel_bridge.txt")
    added = run_ingest([Path(original)], "t", settings, embeddings=HashingEmbeddings())
    assert added.added == 1 and exit_code(added) == 0
    copy = Path(shutil.copy(original, tmp_path / "second copy.txt"))
    duplicate = run_ingest([copy, empty], "t", settings, embeddings=HashingEmbeddings())
    assert [d.reason for d in duplicate.duplicates] == [f"already in the KB as {original}"]
    assert exit_code(duplicate) == 0  # its content is in the KB
    assert settings.kb_dir("t").is_dir()  # an existing KB is never removed, even if untouched
    original.unlink()
    pruned = run_ingest([tmp_path], "t", settings, prune=True, embeddings=HashingEmbeddings())
    assert exit_code(pruned) == 0 and pruned.removed == 1


def test_duplicate_is_one_line_of_the_text_report(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = Path(shutil.copy(SAMPLES_DIR / "kestrel_bridge.txt", tmp_path / "a.txt"))
    run_ingest([original], "t", settings, embeddings=HashingEmbeddings())
    copy = Path(shutil.copy(original, tmp_path / "b.txt"))
    capsys.readouterr()
    print_summary(run_ingest([copy], "t", settings, embeddings=HashingEmbeddings()))
    out = capsys.readouterr().out
    assert f"duplicate {copy}: already in the KB as {original}\n" in out
    assert "duplicate" in out.splitlines()[2]  # the table's column


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_bars_only_when_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert not ingesting._progress_wanted(as_json=False)
    monkeypatch.setattr(sys, "stderr", _Stream(tty=True))
    assert ingesting._progress_wanted(as_json=False)
    assert not ingesting._progress_wanted(as_json=True)


# A fresh interpreter: pytest's own log capture would hide what a user's terminal shows.
BAD_PDF_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rag_app.commands.ingesting import library_logs_to, print_summary, run_ingest
    from rag_app.settings import Settings
    from tests.fakes import HashingEmbeddings

    tmp = Path(sys.argv[1])
    settings = Settings(data_dir=tmp / "data")
    with library_logs_to(tmp / "ingest.log"):
        summary = run_ingest([tmp / "bad.pdf", tmp / "good.md"], "t", settings,
                             show_progress=False, embeddings=HashingEmbeddings())
    print_summary(summary)
    """
)


def test_bad_pdf_is_one_report_line_and_pypdf_text_goes_to_the_log(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf at all")
    (tmp_path / "good.md").write_text("# Tides\n\nHigh tide is at 06:40.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    done = subprocess.run(
        [sys.executable, "-c", BAD_PDF_SCRIPT, str(tmp_path)],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**env, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = [line for line in done.stdout.splitlines() if "bad.pdf" in line]
    assert len(lines) == 1 and lines[0].startswith(f"failed {tmp_path / 'bad.pdf'}: corrupt")
    assert "invalid pdf header" not in done.stdout
    assert "pypdf" in (log := (tmp_path / "ingest.log").read_text())
    assert "invalid pdf header" in log
