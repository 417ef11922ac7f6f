"""The Ingestor end to end on real files, Qdrant Edge and the packaged embedder.

One Ingestor (one worker process) serves the module; each test works in its own sub-folder,
so its documents (source set = the folder, plus the path inside it) do not meet another test's.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.make_docs import (
    SECTIONS_NL,
    make_docx,
    make_html,
    make_markdown,
    make_odt,
    make_pdf,
    make_text,
)
from ingest_support import make_ingestor
from retrieval_fixtures import embedder

from ingest.errors import DocumentNotFound, LabelError
from ingest.manifest import Labels
from ingest.pipeline import Ingestor
from ingest.report import ProgressUpdate
from vraagbaak_core.types import PUBLIC_GROUP, Chunk, MatchAny, SearchFilter, StoreQuery

ZORG = Labels(groups=("zorg",))
ENGLISH = (
    "Visitors are welcome between ten in the morning and eight in the evening. The ward may limit "
    "visits during an outbreak, and children under twelve must be accompanied by an adult."
)


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    ingestor = make_ingestor(tmp_path_factory.mktemp("ingest"))
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def _chunks(ing: Ingestor, doc_id: str) -> list[Chunk]:
    vec = embedder().embed_query("x").tolist()
    flt = SearchFilter(must=(MatchAny("doc_id", (doc_id,)),))
    hits = ing.store.query(StoreQuery(mode="dense", limit=1000, dense=vec, filter=flt))
    return sorted((h.chunk for h in hits), key=lambda c: c.index)


def _id(ing: Ingestor, root: Path, source: str) -> str:
    rec = ing.state.find(str(root.resolve()), source)
    assert rec is not None, source
    return rec.doc_id


def _docset(root: Path) -> Path:
    root.mkdir(parents=True)
    pages = ["Bezoektijden zijn van tien tot acht uur.", "Op de IC gelden kortere tijden."]
    make_pdf(root / "protocol bezoek.pdf", pages, title="Bezoekprotocol")
    make_docx(root / "hygiëne.docx", "Hygiënebeleid", SECTIONS_NL)
    make_odt(root / "beleid.odt", "Informatiebeveiliging", SECTIONS_NL)
    make_html(root / "intranet.html", "Intranetpagina", SECTIONS_NL)
    (root / "sub").mkdir()
    make_markdown(root / "sub" / "notities.md", "Notities", SECTIONS_NL)
    make_text(root / "visiting.txt", ENGLISH, "cp1252")
    return root


def test_every_format_is_ingested_with_labels_and_citation_fields(ing: Ingestor, tmp_path: Path) -> None:
    root = _docset(tmp_path / "set1")
    updates: list[ProgressUpdate] = []
    report = ing.ingest_paths([root], ZORG, progress=updates.append)
    assert report.ok, report.failed
    assert len(report.added) == 6 and report.chunks_embedded == sum(r.chunks for r in report.added)
    assert updates[-1].files_done == updates[-1].files_total == 6
    by_source = {r.source: r for r in report.added}
    assert set(by_source) == {
        "protocol bezoek.pdf", "hygiëne.docx", "beleid.odt", "intranet.html", "sub/notities.md",
        "visiting.txt",
    }
    pdf = _chunks(ing, _id(ing, root, "protocol bezoek.pdf"))
    assert [c.page for c in pdf] == [1, 2] and pdf[0].title == "Bezoekprotocol"
    docx = _chunks(ing, _id(ing, root, "hygiëne.docx"))
    assert {"Handhygiëne", "Sieraden"} <= {c.section for c in docx}
    for c in docx + pdf:
        assert c.groups == ("zorg",) and c.classification == "intern" and c.language == "nl"
        assert len(c.doc_sha256) == 64 and c.ingested_at
    assert _chunks(ing, _id(ing, root, "visiting.txt"))[0].language == "en"
    infos = {i.source: i for i in ing.list_documents()}
    assert infos["hygiëne.docx"].chunks == len(docx) and infos["hygiëne.docx"].groups == ("zorg",)


def test_rerun_unchanged_embeds_nothing_then_change_and_prune(ing: Ingestor, tmp_path: Path) -> None:
    root = tmp_path / "set2"
    root.mkdir()
    docs = {f"doc{i}.md": f"# Doc {i}\n\n" + f"Regel {i} over medicatie en bezoek. " * 30 for i in range(4)}
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    first = ing.ingest_paths([root], ZORG)
    assert len(first.added) == 4
    total = ing.store.count()

    again = ing.ingest_paths([root], ZORG)
    assert len(again.unchanged) == 4 and again.chunks_embedded == 0 and ing.store.count() == total

    doc0 = _id(ing, root, "doc0.md")
    old_ids = set(ing.state.get(doc0).chunk_ids)  # type: ignore[union-attr]
    (root / "doc0.md").write_text("# Doc 0\n\nNieuwe inhoud over handhygiëne.", encoding="utf-8")
    (root / "doc3.md").unlink()
    changed = ing.ingest_paths([root], ZORG)  # no --prune: doc3 stays
    assert [r.source for r in changed.updated] == ["doc0.md"] and len(changed.unchanged) == 2
    assert not changed.deleted and ing.store.count(_id(ing, root, "doc3.md")) > 0
    new = _chunks(ing, doc0)
    assert len(new) == 1 and "handhygiëne" in new[0].text and not ({c.chunk_id for c in new} & old_ids)
    assert ing.store.count(doc0) == 1

    doc3 = _id(ing, root, "doc3.md")
    refused = ing.ingest_paths([root], ZORG, prune=True)  # 1 of 4 is 25%, over the 20% default
    assert not refused.deleted and "prune_max_fraction" in (refused.prune[0].refused or "")
    pruned = ing.ingest_paths([root], ZORG, prune=True, force=True)
    assert [r.source for r in pruned.deleted] == ["doc3.md"] and len(pruned.unchanged) == 3
    assert ing.store.count(doc3) == 0 and ing.state.get(doc3) is None


def test_labels_from_manifest_flags_and_public(ing: Ingestor, tmp_path: Path) -> None:
    root = tmp_path / "set3"
    (root / "beleid").mkdir(parents=True)
    (root / "publiek").mkdir()
    (root / "vraagbaak.yaml").write_text(
        "classification: intern\n"
        "rules:\n"
        "  - match: 'beleid/'\n    groups: [ict]\n    classification: vertrouwelijk\n"
        "  - match: 'publiek/**'\n    public: true\n",
        encoding="utf-8",
    )
    (root / "beleid" / "ib.md").write_text("# IB\n\nWachtwoorden worden nooit gedeeld.", encoding="utf-8")
    (root / "publiek" / "bezoek.md").write_text("# Bezoek\n\nBezoek is welkom.", encoding="utf-8")
    (root / "los.md").write_text("# Los\n\nZonder groepen.", encoding="utf-8")

    no_flags = ing.ingest_paths([root], Labels())
    failed = {r.source: r.reason for r in no_flags.failed}
    assert list(failed) == ["los.md"]
    assert "no access groups" in failed["los.md"] and "--public" in failed["los.md"]
    ib = _chunks(ing, _id(ing, root, "beleid/ib.md"))[0]
    assert ib.groups == ("ict",) and ib.classification == "vertrouwelijk"
    pub = _chunks(ing, _id(ing, root, "publiek/bezoek.md"))[0]
    assert pub.groups == (PUBLIC_GROUP,) and pub.classification == "openbaar"
    assert "vraagbaak.yaml" not in {r.source for r in no_flags.results}

    # flags: los.md gets the CLI groups; a label change rewrites payloads without new content
    with_flags = ing.ingest_paths([root], Labels(groups=("zorg", "ok"), classification="openbaar"))
    assert [r.source for r in with_flags.added] == ["los.md"]
    assert [r.source for r in with_flags.unchanged] == ["beleid/ib.md"]  # its rule outranks the flags
    assert [r.source for r in with_flags.updated] == ["publiek/bezoek.md"]  # flag groups join the public one
    los = _chunks(ing, _id(ing, root, "los.md"))[0]
    assert los.groups == ("zorg", "ok") and los.classification == "openbaar"
    relabel = ing.ingest_paths([root / "los.md"], Labels(groups=("zorg",)))
    assert [r.source for r in relabel.updated] == ["los.md"]
    assert _chunks(ing, _id(ing, root, "los.md"))[0].groups == ("zorg",)

    with pytest.raises(LabelError, match="allowed"):
        Labels(groups=("x",), classification="topgeheim")


def test_upload_bytes_delete_and_verify(ing: Ingestor) -> None:
    data = ("# Upload\n\n" + "Dit protocol beschrijft de valpreventie bij ouderen. " * 40).encode()
    res = ing.ingest_bytes(data, "../../etc/valpreventie.md", ZORG)
    assert res.status == "added" and res.source == "uploads/valpreventie.md" and res.chunks >= 2
    retry = ing.ingest_bytes(data, "valpreventie.md", ZORG)  # a retried upload makes no duplicate
    assert retry.status == "unchanged" and retry.doc_id == res.doc_id
    assert ing.store.count(res.doc_id) == res.chunks

    bad = ing.ingest_bytes(b"\x00\x01\x02" * 100, "junk.txt", ZORG)
    assert bad.status == "failed" and "binary" in bad.reason
    assert ing.ingest_bytes(b"", "leeg.txt", ZORG).reason == "empty file (0 bytes)"

    assert res.doc_id is not None
    assert ing.delete_document(res.doc_id) == res.chunks
    assert ing.store.count(res.doc_id) == 0 and res.doc_id not in {d.doc_id for d in ing.list_documents()}
    with pytest.raises(DocumentNotFound):
        ing.delete_document(res.doc_id)


def test_point_ids_are_unique_and_deterministic(ing: Ingestor, tmp_path: Path) -> None:
    root = tmp_path / "set5"
    root.mkdir()
    (root / "same.md").write_text("# A\n\n" + "Herhaalde zin. " * 200, encoding="utf-8")
    ing.ingest_paths([root], ZORG)
    chunks = _chunks(ing, _id(ing, root, "same.md"))
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)) == ing.store.count(_id(ing, root, "same.md"))
    assert collections.Counter(c.index for c in chunks) == collections.Counter(range(len(chunks)))
