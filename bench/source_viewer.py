"""Source viewer on large documents: time to build the HTML of a cited chunk's window.

A synthetic Markdown document (N sections of prose) is ingested with the hashing fake embedder
(the embedder does not matter here: the viewer reads only the catalog). For chunks at the start,
middle and end, it times ingest.doctext.document_window + rag_app.ui.source_view.window_html for
the default window (the chunk and the one after it) and, for contrast, for the whole document.

    python -m bench.source_viewer --sections 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import latency_summary, print_section, time_calls, write_results  # noqa: E402

SENTENCE = "The harbour master of section {i} logs {i} ships a day and keeps the lamp lit. "


def build_doc(path: Path, sections: int) -> None:
    parts = [f"# Section {i}\n\n" + SENTENCE.format(i=i) * 12 for i in range(sections)]
    path.write_text("\n\n".join(parts), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)

    from ingest.doctext import document_window
    from ingest.kb import open_kb
    from ingest.pipeline import ingest_paths
    from rag_app.settings import Settings
    from rag_app.ui.source_view import window_html
    from tests.fakes import HashingEmbeddings

    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "big.md"
        build_doc(doc, args.sections)
        settings = Settings(data_dir=Path(tmp) / "data")
        kb = open_kb("bench", settings=settings, create=True, embeddings=HashingEmbeddings())
        ingest_paths([doc], kb)
        ids = kb.catalog.source_ids(str(doc))
        rows = kb.catalog.by_ids(ids)
        by_position = sorted(rows.values(), key=lambda r: int(r.metadata.get("position", 0)))
        total = len(by_position)
        picks = {"start": by_position[0], "middle": by_position[total // 2], "end": by_position[-1]}
        results: list[dict[str, Any]] = []
        for where, row in picks.items():
            for label, after in (("window (chunk + 1)", 1), ("whole document", total)):

                def render(_: object, cid: str = row.chunk_id, n: int = after) -> str:
                    window = document_window(kb, cid, before=0 if n == 1 else total, after=n)
                    assert window is not None
                    return window_html(window, None)

                seconds = time_calls(render, range(args.repeats if after == 1 else 5), warmup=1)
                size = len(render(None))
                results.append(
                    {"chunk": where, "render": label, "html_chars": size}
                    | {k: round(v, 2) for k, v in latency_summary(seconds).items()}
                )
        kb.close()
    print_section(f"Source viewer, {args.sections} sections = {total} chunks", results)
    write_results("source_viewer", {"chunks": total, "rows": results}, vars(args))


if __name__ == "__main__":
    main()
