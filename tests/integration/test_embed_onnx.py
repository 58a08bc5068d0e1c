"""The ONNX export of the real MiniLM: same vectors and tokens as sentence-transformers, picked
by load_embedder once it exists, and a cold `rag search` then never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from ingest import embed, onnx_embed
from ingest.chunk import hf_token_spans
from ingest.kb import open_kb
from ingest.pipeline import ingest_texts
from rag_app.settings import Settings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

LONG = " ".join(
    ["The Harrow Point lighthouse keeps its lamp lit through every winter storm."] * 30
    + ["Greywater orchard sells cider, pears and quince jelly at the Saturday market."] * 30
)  # ~1000 tokens: the topic changes far past max_seq_length, so truncation shows
TEXTS = [
    "When was the lighthouse first lit?",
    "lighthouse",
    "  leading and trailing spaces  ",
    "",
    "Ærøskøbing færge — über die Brücke; naïve café, 東京の渡し船, Ελληνικά, emoji 🚢.",
    "Kestrel Bridge: 3 spans × 42 m, opened 1 May 1902 (steel, riveted).",
    "A very long sentence " + "with many repeated words " * 40,
    LONG,
    "short",
    "Who designed it?\nShe did.\n\nIn 1871.",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("onnx") / "data")


@pytest.fixture(scope="module")
def st_model(settings: Settings) -> Any:
    target, _ = embed.resolve_model(settings)
    return embed._load_sentence_transformer(target)


@pytest.fixture(scope="module")
def exported(settings: Settings, st_model: Any) -> Path:
    target, _ = embed.resolve_model(settings)
    folder = onnx_embed.export_onnx(st_model, target, settings)
    assert folder is not None and folder.parent == settings.models_dir
    return folder


def test_export_vectors_match_sentence_transformers(st_model: Any, exported: Path) -> None:
    onnx = onnx_embed.OnnxEmbeddings(exported, "minilm", batch_size=3, cache_size=0)
    expected = st_model.encode(TEXTS, normalize_embeddings=True, show_progress_bar=False)
    got = onnx.embed_array(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), 384)
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5), strict=True))
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # truncated where sentence-transformers truncates (the tokenizer file itself says 128)
    assert len(onnx._tokenizer.encode(LONG).ids) == st_model.max_seq_length == 256


def test_export_tokenizer_chunks_like_the_model(st_model: Any, exported: Path) -> None:
    onnx = onnx_embed.OnnxEmbeddings(exported, "minilm", batch_size=8)
    for text in TEXTS:
        assert hf_token_spans(onnx.tokenizer)(text) == hf_token_spans(st_model.tokenizer)(text)


def test_export_is_published_once_and_reused(
    settings: Settings, st_model: Any, exported: Path
) -> None:
    stamp = (exported / "model.onnx").stat().st_mtime_ns
    target, _ = embed.resolve_model(settings)
    assert onnx_embed.export_onnx(st_model, target, settings) == exported
    assert (exported / "model.onnx").stat().st_mtime_ns == stamp
    assert [p.name for p in settings.models_dir.iterdir()] == [exported.name]  # no temp left
    assert onnx_embed.find_export(settings, target) == exported
    assert onnx_embed.find_export(settings, "some-org/not-a-folder") is None


def test_load_embedder_uses_export_with_answer_threads(settings: Settings, exported: Path) -> None:
    # a batch size no other test uses: a fresh entry in load_embedder's per-process cache
    answering = settings.model_copy(update={"embedding_batch_size": 5, "answer_threads": 1})
    try:
        embed.limit_threads(answering)
        embeddings = embed.load_embedder(answering)
    finally:
        embed._THREADS["n"] = 0  # the thread cap is per process: do not leak it to other tests
    assert isinstance(embeddings, onnx_embed.OnnxEmbeddings)
    assert embeddings.folder == exported
    assert embeddings.model_name == embed.DEFAULT_MODEL_NAME  # what KB manifests record
    assert embeddings.dim == 384
    assert embeddings.session.get_session_options().intra_op_num_threads == 1


def test_cold_search_uses_export_without_torch(
    settings: Settings, st_model: Any, exported: Path
) -> None:
    """A KB written with sentence-transformers opens unchanged with the export."""
    name = embed.DEFAULT_MODEL_NAME
    kb = open_kb(
        "notes", settings, create=True, embeddings=embed.SentenceEmbeddings(st_model, name, 8)
    )
    docs = [
        ("lighthouse.md", "The Harrow Point lighthouse was first lit on 12 March 1874."),
        ("orchard.md", "Greywater orchard grows pears and quince beside the river."),
    ]
    assert ingest_texts(docs, kb).added == 2
    kb.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(settings.data_dir), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rag_app.cli"]
        + ["search", "when was the lamp first lit", "--kb", "notes", "--json", "-k", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"source": "lighthouse.md"' in result.stdout
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "onnxruntime" in modules
    assert not {"torch", "transformers", "sentence_transformers"} & modules


def test_models_it_cannot_reproduce_are_not_exported() -> None:
    class Transformer:
        pass

    class Pooling:
        pooling_mode = "mean"

    class Dense:
        pass

    assert onnx_embed.export_spec([Transformer(), Pooling(), Dense()]) is None
    weighted = Pooling()
    weighted.pooling_mode = "weightedmean"
    assert onnx_embed.export_spec([Transformer(), weighted]) is None


@pytest.mark.asyncio  # the suite's async tests are bare `async def`s (see test_langchain_standard)
class TestOnnxEmbeddingsStandard(EmbeddingsIntegrationTests):
    """LangChain's own Embeddings contract, on the exported MiniLM."""

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return onnx_embed.OnnxEmbeddings

    @pytest.fixture
    def model(self, exported: Path) -> Embeddings:
        return onnx_embed.OnnxEmbeddings(exported, embed.DEFAULT_MODEL_NAME, batch_size=8)


def test_int8_variant_stays_close_and_is_made_once(exported: Path) -> None:
    graph = onnx_embed.quantize_export(exported)
    assert graph == exported / onnx_embed.INT8_FILE
    stamp = graph.stat().st_mtime_ns
    assert onnx_embed.quantize_export(exported) == graph  # reused, not made again
    assert graph.stat().st_mtime_ns == stamp
    assert not list(exported.glob(".*.tmp"))  # nothing half-written left behind
    fp32 = onnx_embed.OnnxEmbeddings(exported, "minilm", batch_size=4, cache_size=0)
    int8 = onnx_embed.OnnxEmbeddings(
        exported, "minilm", batch_size=4, cache_size=0, graph=onnx_embed.INT8_FILE
    )
    assert int8.int8 and not fp32.int8
    cosines = np.sum(fp32.embed_array(TEXTS) * int8.embed_array(TEXTS), axis=1)
    # SciFact abstracts: min 0.989, mean 0.995 (bench/embed_int8.py); the odd texts here (the
    # empty string, a lone word) stray a little further
    assert cosines.min() >= 0.97 and cosines.mean() >= 0.99, cosines.round(4)
    assert cosines.min() < 0.99999  # it is a different graph, not the fp32 one again


def test_ingestion_embeds_documents_in_int8_and_questions_find_them(
    settings: Settings, exported: Path
) -> None:
    # the export's fp32 embedder, as load_embedder gives it (its process cache may hold a
    # sentence-transformers one from another test's data dir: either is swapped the same way)
    fp32 = onnx_embed.OnnxEmbeddings(exported, embed.DEFAULT_MODEL_NAME, batch_size=64)
    kb = open_kb("int8", settings, create=True, embeddings=fp32)
    assert not fp32.int8
    documents = embed.document_embedder(kb.embeddings, settings)
    assert isinstance(documents, onnx_embed.OnnxEmbeddings) and documents.int8
    before = documents.encoded
    docs = [  # texts no other test embeds (the embedder's vector cache lives per process)
        ("lighthouse.md", "Harrow Point's lamp was lit for the first time on 12 March 1874."),
        ("orchard.md", "Pears and quince grow in the Greywater orchard beside the river."),
        ("ferry.md", "Every twenty minutes the Millbrook ferry leaves from Pier 3."),
    ]
    assert ingest_texts(docs, kb).chunks_written == 3
    assert documents.encoded - before == 3  # the documents went through the int8 graph
    hits = kb.dense_search("when was the lamp first lit?", 1)  # the question in fp32
    assert hits[0][0].source == "lighthouse.md"
    kb.close()
    # off: full precision for documents too; custom embedders are never swapped
    full = settings.model_copy(update={"embedding_int8": False})
    assert embed.document_embedder(kb.embeddings, full) is kb.embeddings

    class Custom(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0, 0.0]

    custom = Custom()
    assert embed.document_embedder(custom, settings) is custom
