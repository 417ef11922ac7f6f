"""Document identity (issue 11, item 2): source set + path inside it; uploads get their own ids.

Before source sets, ``vraagbaak ingest /x/a`` then ``/x/b``, each with ``beleid.md``, left one
document (B replaced A, A's labels gone), and two uploads named alike replaced each other.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_support import make_ingestor

from ingest.errors import DocumentNotFound, LabelError, ReplaceError
from ingest.manifest import Labels
from ingest.pipeline import Ingestor
from ingest.state import IngestState


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    ingestor = make_ingestor(tmp_path_factory.mktemp("identity"))
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def _write(root: Path, name: str, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")


def test_same_relative_path_in_two_folders_stays_two_documents(ing: Ingestor, tmp_path: Path) -> None:
    a, b = tmp_path / "x" / "a", tmp_path / "x" / "b"
    _write(a, "beleid.md", "# Beleid A\n\nAfdeling A bewaart medicatie in de koelkast.")
    _write(b, "beleid.md", "# Beleid B\n\nAfdeling B bewaart medicatie in een kluis.")
    ra = ing.ingest_paths([a], Labels(groups=("afdeling-a",)))
    rb = ing.ingest_paths([b], Labels(groups=("afdeling-b",), classification="vertrouwelijk"))
    assert len(ra.added) == 1 and len(rb.added) == 1, (ra.results, rb.results)
    assert ra.added[0].doc_id != rb.added[0].doc_id
    docs = {d.doc_id: d for d in ing.list_documents()}
    da, db = docs[ra.added[0].doc_id], docs[rb.added[0].doc_id]
    assert (da.source, da.source_set, da.groups) == ("beleid.md", str(a.resolve()), ("afdeling-a",))
    assert (db.source, db.source_set, db.groups, db.classification) == (
        "beleid.md", str(b.resolve()), ("afdeling-b",), "vertrouwelijk",
    )
    assert ing.store.count(da.doc_id) >= 1 and ing.store.count(db.doc_id) >= 1
    # both folders again in one run: nothing replaced, nothing re-embedded
    again = ing.ingest_paths([a, b], Labels(groups=("afdeling-a",)))
    assert {r.doc_id for r in again.unchanged} == {da.doc_id} and len(again.updated) == 1  # b's labels changed
    # a single file resolves to the recorded set that holds it
    single = ing.ingest_paths([a / "beleid.md"], Labels(groups=("afdeling-a",)))
    assert [r.doc_id for r in single.unchanged] == [da.doc_id]


def test_named_source_set_moves_only_when_asked(ing: Ingestor, tmp_path: Path) -> None:
    old, new = tmp_path / "share-old", tmp_path / "share-new"
    _write(old, "p.md", "# Protocol\n\nHandalcohol twintig seconden inwrijven.")
    first = ing.ingest_paths([old], Labels(groups=("zorg",)), source="intranet")
    doc_id = first.added[0].doc_id
    assert ing.state.source_set("intranet") is not None
    old.rename(new)
    refused = ing.ingest_paths([new], Labels(groups=("zorg",)), source="intranet")
    assert refused.failed and "--rebind" in refused.failed[0].reason and not refused.added
    moved = ing.ingest_paths([new], Labels(groups=("zorg",)), source="intranet", rebind=True)
    assert [r.doc_id for r in moved.unchanged] == [doc_id]
    rec = ing.state.get(doc_id)
    assert rec is not None and rec.root == str(new.resolve())
    # the folder is the set "intranet" now: another name for it is refused, not a silent duplicate
    other = ing.ingest_paths([new], Labels(groups=("zorg",)), source="anders")
    assert other.failed and "already ingested as source set 'intranet'" in other.failed[0].reason
    for bad in ("uploads", "/etc", ""):
        with pytest.raises(LabelError):
            ing.ingest_paths([new], Labels(groups=("zorg",)), source=bad)


def test_uploads_named_alike_are_two_documents_unless_one_is_replaced(ing: Ingestor, tmp_path: Path) -> None:
    one = ing.ingest_bytes(b"# Beleid\n\nVersie van de longafdeling over inhalatoren.", "beleid.md",
                           Labels(groups=("long",)))
    two = ing.ingest_bytes(b"# Beleid\n\nVersie van de kinderafdeling over koortsmeting.", "beleid.md",
                           Labels(groups=("kind",)))
    assert one.status == two.status == "added" and one.doc_id != two.doc_id
    assert one.doc_id is not None and two.doc_id is not None
    assert ing.get_document(one.doc_id).groups == ("long",) and ing.get_document(two.doc_id).groups == ("kind",)
    assert ing.store.count(one.doc_id) >= 1 and ing.store.count(two.doc_id) >= 1

    new = ing.ingest_bytes(b"# Beleid\n\nNieuwe versie: inhalatoren na gebruik reinigen.", "beleid-v2.md",
                           Labels(groups=("long",)), replace=one.doc_id)
    assert new.status == "updated" and new.doc_id == one.doc_id
    assert ing.get_document(one.doc_id).source == "uploads/beleid-v2.md"
    assert ing.get_document(two.doc_id).groups == ("kind",)  # untouched

    with pytest.raises(DocumentNotFound):
        ing.ingest_bytes(b"# X\n\ntekst", "x.md", Labels(groups=("long",)), replace=str(uuid.uuid4()))
    folder = tmp_path / "map"
    _write(folder, "f.md", "# F\n\nUit een map.")
    folder_doc = ing.ingest_paths([folder], Labels(groups=("zorg",))).added[0].doc_id
    with pytest.raises(ReplaceError, match="folder set"):
        ing.ingest_bytes(b"# F\n\nanders", "f.md", Labels(groups=("zorg",)), replace=folder_doc)


V1_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, root TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '',
    labels_fp TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', format TEXT NOT NULL DEFAULT '',
    groups TEXT NOT NULL DEFAULT '[]', classification TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0, chunk_ids TEXT NOT NULL DEFAULT '[]',
    pending_ids TEXT, stale_ids TEXT,
    status TEXT NOT NULL CHECK (status IN ('writing', 'done', 'deleting')), ingested_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX documents_root ON documents (root);
PRAGMA user_version=1;
"""


def test_version_1_state_is_migrated_keeping_every_doc_id(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    ns = uuid.UUID("3f0c6f0e-6a1b-5c1e-9a57-7672616167ba")
    rows = [("beleid.md", "/srv/intranet"), ("sub/a.md", "/srv/intranet"), ("uploads/u.md", "uploads")]
    for source, root in rows:
        db.execute(
            "INSERT INTO documents (doc_id, source, root, sha256, groups, chunk_ids, status) "
            "VALUES (?, ?, ?, 'abc', ?, ?, 'done')",
            (str(uuid.uuid5(ns, "doc:" + source)), source, root, json.dumps(["zorg"]), json.dumps(["c1"])),
        )
    db.commit()
    db.close()
    state = IngestState(path)
    try:
        assert [(s.name, s.root) for s in state.source_sets()] == [("/srv/intranet", "/srv/intranet")]
        for source, root in rows:
            rec = state.find(root, source)
            assert rec is not None and rec.doc_id == str(uuid.uuid5(ns, "doc:" + source))
            assert rec.source_set == root and rec.groups == ("zorg",)
    finally:
        state.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
