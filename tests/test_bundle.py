"""The exit bundle: Edge → bundle → qdrant-client → bundle is byte-identical on the chunks and equal
on the search results; a tampered bundle is refused (library and CLI); a non-empty target is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient
from retrieval_fixtures import embedder
from support import EXAMPLES, ROOT, make_settings

from ingest.bundle import CHUNKS, BundleError, export_bundle, import_bundle, verify_bundle
from ingest.catalog_factory import build_catalog
from ingest.manifest import Labels
from ingest.originals import OriginalStore
from ingest.pipeline import Ingestor
from ingest.quarantine_factory import build_quarantine
from ingest.state import IngestState
from retrieval.analysis import Bm25SparseEncoder
from retrieval.stores.edge import EdgeStore
from retrieval.stores.qdrant import QdrantStore
from serving.cli.bundle import model_identities
from serving.staff.feedback.factory import build_feedback
from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.ports import VectorStore
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import StoreQuery

QUERIES = [
    "Hoe lang moet ik mijn handen wassen?",
    "hand hygiene before patient contact",
    "medicatie dubbele controle",
    "valpreventie ouderen",
    "wat doe ik bij een prikaccident",
    "isolatie bij MRSA",
]
VB = [sys.executable, "-c", "from serving.cli.main import main; main()"]


def _originals(s: Settings) -> OriginalStore:
    return OriginalStore(s.resolve(s.ingest.originals_dir or s.data_dir / "originals"))


def _export(s: Settings, store: VectorStore, dest: Path) -> Any:
    audit = build_audit_log(s)
    catalog = build_catalog(s)
    try:
        return export_bundle(dest, store=store, originals=_originals(s), catalog=catalog,
                             quarantine=build_quarantine(s), feedback=build_feedback(s),
                             models=model_identities(s, store.collection_record()), audit_sink=audit.sink)
    finally:
        catalog.close()
        audit.close()


def _top10(store: VectorStore) -> list[Any]:
    """The top 10 of each fixed query in each mode: dense and sparse as {id: score}; hybrid as the set
    of ids, because rank fusion turns the arbitrary order of a sparse tie into different fused scores.
    Compare two of these with :func:`_same_top10` (by ids, scores with a tolerance: the engines compute
    in float32 or float64)."""
    emb, sparse = embedder(), Bm25SparseEncoder()
    out: list[Any] = []
    for q in QUERIES:
        for mode in ("dense", "sparse", "hybrid"):
            req = StoreQuery(mode=mode, limit=10, dense=emb.embed_query(q).tolist(), sparse=sparse.encode_query(q))
            hits = {h.chunk.chunk_id: h.score for h in store.query(req)}
            assert hits or mode == "sparse"
            out.append((mode, sorted(hits) if mode == "hybrid" else hits))
    return out


SCORE_TOL = 1e-4


def _same_top10(got: list[Any], want: list[Any]) -> None:
    """Same ids and, for each id both hold, the same score within SCORE_TOL. An id within SCORE_TOL of
    the 10th score may fall on either side of the cut-off (a near tie), so only the ids clearly above
    it must be in both."""
    assert [m for m, _ in got] == [m for m, _ in want]
    for (mode, a), (_, b) in zip(got, want, strict=True):
        if mode == "hybrid":
            assert a == b
            continue
        for x, y in ((a, b), (b, a)):
            floor = min(x.values(), default=0.0) + SCORE_TOL if len(x) == 10 else float("-inf")
            missing = [i for i, sc in x.items() if sc > floor and i not in y]
            assert not missing, (mode, missing)
        for i in a.keys() & b.keys():
            assert abs(a[i] - b[i]) <= SCORE_TOL, (mode, i, a[i], b[i])


@pytest.fixture(scope="module")
def edge_deployment(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("edge")
    s = make_settings(tmp)
    ing = Ingestor.from_settings(s, embedder=embedder())
    rep = ing.ingest_paths([EXAMPLES], Labels(groups=("zorg",)))
    assert not rep.failed and ing.store.count() > 0
    build_audit_log(s).record("document.ingest", user_id="test")  # a chain to carry along
    bundle = tmp / "bundle-1"
    report = _export(s, ing.store, bundle)
    top = _top10(ing.store)
    counts = {"chunks": ing.store.count(), "documents": len(ing.state.all())}
    ing.close()
    return {"settings": s, "bundle": bundle, "report": report, "top": top, "counts": counts, "tmp": tmp}


def test_bundle_lists_every_file_with_sha256(edge_deployment: Any) -> None:
    bundle: Path = edge_deployment["bundle"]
    manifest = verify_bundle(bundle)
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"chunks.jsonl", "chunks.parquet", "catalog.json", "models.json", "audit/audit.jsonl"} <= on_disk
    assert manifest["counts"]["chunks"] == edge_deployment["counts"]["chunks"]
    assert manifest["counts"]["originals"] == manifest["counts"]["documents"] == edge_deployment["counts"]["documents"]
    row = json.loads((bundle / CHUNKS).open(encoding="utf-8").readline())
    assert row["payload"]["text"] and row["payload"]["doc_id"] and len(row["dense"]) == embedder().dimension
    assert row["sparse"]["indices"] and len(row["sparse"]["indices"]) == len(row["sparse"]["values"])
    models = json.loads((bundle / "models.json").read_text())
    assert models["embedder"]["name"] == embedder().name and models["embedder"]["files_sha256"]
    # the Parquet copy holds the same rows, readable with a standard tool
    import pyarrow.parquet as pq

    table = pq.read_table(bundle / "chunks.parquet")
    assert table.num_rows == manifest["counts"]["chunks"]
    assert table.column("id").to_pylist()[0] == row["id"]


def test_round_trip_edge_qdrant_edge_is_identical(edge_deployment: Any, tmp_path: Path) -> None:
    s2 = make_settings(tmp_path / "q")
    store = QdrantStore("", "vraagbaak", client=QdrantClient(location=":memory:"))
    emb = embedder()
    rep = import_bundle(edge_deployment["bundle"], store=store, originals=_originals(s2),
                        catalog=build_catalog(s2), quarantine=build_quarantine(s2), feedback=build_feedback(s2),
                        embedder_name=emb.name, embedder_dimension=emb.dimension,
                        audit_file=s2.resolve(s2.audit.path))
    assert rep.chunks == edge_deployment["counts"]["chunks"] == store.count()
    state = IngestState(s2.resolve(s2.ingest.state_path))
    assert len(state.all()) == edge_deployment["counts"]["documents"]
    for rec in state.all():  # every original back, byte for byte
        assert _originals(s2).exists(rec.doc_id)
        assert _originals(edge_deployment["settings"]).read(rec.doc_id) == _originals(s2).read(rec.doc_id)
    state.close()
    assert build_audit_log(s2).verify().ok  # the chain came along intact
    _same_top10(_top10(store), edge_deployment["top"])

    # qdrant-client's local mode divides every cosine vector by its float32 norm again on upsert,
    # so a dense value may move by an ulp; everything else must come back byte for byte (a Qdrant
    # server, the engine Edge runs, keeps a normalised vector as it is: the Edge leg below is exact)
    again = _export(s2, store, tmp_path / "bundle-2")
    first = (edge_deployment["bundle"] / CHUNKS).read_bytes()
    second = (tmp_path / "bundle-2" / CHUNKS).read_bytes()
    assert again.chunks == edge_deployment["report"].chunks
    for a, b in zip(first.splitlines(), second.splitlines(), strict=True):
        ra, rb = json.loads(a), json.loads(b)
        da, db = np.asarray(ra.pop("dense"), dtype=np.float32), np.asarray(rb.pop("dense"), dtype=np.float32)
        assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)
        assert np.abs(da - db).max() <= 2.5e-7

    # into an Edge store: byte-identical chunk set, same results
    s3 = make_settings(tmp_path / "e")
    edge = EdgeStore(s3.store.path)
    import_bundle(edge_deployment["bundle"], store=edge, originals=_originals(s3),
                  catalog=build_catalog(s3), quarantine=build_quarantine(s3),
                  feedback=build_feedback(s3),
                  embedder_name=emb.name, embedder_dimension=emb.dimension, audit_file=None)
    _same_top10(_top10(edge), edge_deployment["top"])
    _export(s3, edge, tmp_path / "bundle-3")
    assert (tmp_path / "bundle-3" / CHUNKS).read_bytes() == first
    edge.close()

    # a second import into the now non-empty deployment is refused
    with pytest.raises(BundleError, match="empty deployment"):
        import_bundle(edge_deployment["bundle"], store=store, originals=_originals(s2),
                        catalog=build_catalog(s2), quarantine=build_quarantine(s2), feedback=build_feedback(s2),
                      embedder_name=emb.name, embedder_dimension=emb.dimension, audit_file=None)


def test_audit_chain_restores_into_an_empty_postgresql_sink(edge_deployment: Any, pg_dsn: str, tmp_path: Path) -> None:
    """A deployment on the PostgreSQL audit sink gets the bundle's chain, line for line, and goes on from it."""
    from vraagbaak_core.audit_pg import PostgresAuditSink

    s2 = make_settings(tmp_path / "pg", audit={"backend": "postgresql", "dsn": pg_dsn})
    lines = (edge_deployment["bundle"] / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    sink = PostgresAuditSink(pg_dsn)
    emb = embedder()
    edge = EdgeStore(s2.store.path)
    try:
        rep = import_bundle(edge_deployment["bundle"], store=edge, originals=_originals(s2),
                            catalog=build_catalog(s2), quarantine=build_quarantine(s2),
                            feedback=build_feedback(s2), embedder_name=emb.name,
                            embedder_dimension=emb.dimension, audit_file=None, audit_sink=sink)
        assert rep.audit_records == len(lines)
        assert [e.raw for e in sink.entries()] == lines  # byte for byte, in order
        log = build_audit_log(s2)
        assert log.verify().ok
        log.record("document.ingest", user_id="after-restore")  # the chain goes on from the bundle's head
        assert log.verify().ok and sink.mark() == len(lines) + 1
        log.close()
        # a second import finds the chain (and the store) not empty: refused, nothing added
        s3 = make_settings(tmp_path / "x")
        empty_store = QdrantStore("", "v", client=QdrantClient(location=":memory:"))
        with pytest.raises(BundleError, match="empty deployment"):
            import_bundle(edge_deployment["bundle"], store=empty_store, originals=_originals(s3),
                          catalog=build_catalog(s3), quarantine=build_quarantine(s3),
                          feedback=build_feedback(s3), embedder_name=emb.name,
                          embedder_dimension=emb.dimension, audit_file=None, audit_sink=sink)
        assert sink.mark() == len(lines) + 1
    finally:
        edge.close()
        sink.close()


def test_postgresql_restore_refuses_a_chain_that_does_not_link(pg_dsn: str) -> None:
    from vraagbaak_core.audit import AuditWriteError
    from vraagbaak_core.audit_pg import PostgresAuditSink

    def line(prev: str, sha: str) -> str:
        return json.dumps({"event_id": sha[:8], "event_type": "x", "timestamp": "2026-12-01T00:00:00+00:00",
                           "user_id": "u", "prev_sha256": prev, "sha256": sha})

    sink = PostgresAuditSink(pg_dsn)
    try:
        with pytest.raises(AuditWriteError, match="does not link"):
            sink.restore([line("0" * 64, "a" * 64), line("c" * 64, "b" * 64)])
        assert sink.mark() == 0  # one transaction: nothing kept
        assert sink.restore([line("0" * 64, "a" * 64), line("a" * 64, "b" * 64)]) == 2
    finally:
        sink.close()


@pytest.mark.parametrize("tamper", ["edit-chunk", "extra-file", "missing-original", "edit-manifest"])
def test_tampered_bundle_is_refused(edge_deployment: Any, tmp_path: Path, tamper: str) -> None:
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(edge_deployment["bundle"], bundle)
    if tamper == "edit-chunk":
        data = (bundle / CHUNKS).read_bytes()
        (bundle / CHUNKS).write_bytes(data.replace(b"handen", b"voeten", 1))
        assert (bundle / CHUNKS).read_bytes() != data
    elif tamper == "extra-file":
        (bundle / "originals" / "extra").write_text("x")
    elif tamper == "missing-original":
        next(p for p in (bundle / "originals").rglob("*") if p.is_file()).unlink()
    else:
        m = json.loads((bundle / "manifest.json").read_text())
        m["files"]["catalog.json"]["sha256"] = "0" * 64
        (bundle / "manifest.json").write_text(json.dumps(m))
    s2 = make_settings(tmp_path / "q")
    store = QdrantStore("", "vraagbaak", client=QdrantClient(location=":memory:"))
    catalog = build_catalog(s2)
    with pytest.raises(BundleError, match="fails its manifest"):
        import_bundle(bundle, store=store, originals=_originals(s2), catalog=catalog,
                      quarantine=build_quarantine(s2), feedback=build_feedback(s2),
                      embedder_name=embedder().name, embedder_dimension=embedder().dimension, audit_file=None)
    assert store.count() == 0 and catalog.all() == [] and catalog.source_sets() == []
    catalog.close()


@pytest.mark.slow
def test_cli_export_then_refuse_tampered_then_import(edge_deployment: Any, tmp_path: Path) -> None:
    s = edge_deployment["settings"]
    cfg = tmp_path / "a.yaml"
    cfg.write_text(json.dumps({
        "data_dir": str(s.data_dir), "store": {"backend": "edge", "path": str(s.store.path)},
        "ingest": {"state_path": str(s.ingest.state_path), "originals_dir": str(s.ingest.originals_dir)},
        "audit": {"path": str(s.audit.path)},
    }))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    out = tmp_path / "cli-bundle"
    r = subprocess.run([*VB, "export", "bundle", str(out), "--config", str(cfg), "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["chunks"] == edge_deployment["counts"]["chunks"]
    assert (out / CHUNKS).read_bytes() == (edge_deployment["bundle"] / CHUNKS).read_bytes()
    # the export was audited (after the bundle's chain ends)
    last = json.loads(Path(s.audit.path).read_text().splitlines()[-1])
    assert last["event_type"] == "audit.export" and "exit bundle" in json.dumps(last)

    target = tmp_path / "t"
    cfg2 = tmp_path / "b.yaml"
    cfg2.write_text(json.dumps({
        "data_dir": str(target), "store": {"backend": "edge", "path": str(target / "edge")},
        "ingest": {"state_path": str(target / "state.sqlite"), "originals_dir": str(target / "originals")},
        "audit": {"path": str(target / "audit.jsonl")},
    }))
    (out / "catalog.json").write_text((out / "catalog.json").read_text().replace("zorg", "iedereen"))
    r = subprocess.run([*VB, "import", "bundle", str(out), "--config", str(cfg2)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and "fails its manifest" in r.stderr and "catalog.json" in r.stderr
    assert not (target / "state.sqlite").exists()
    (out / "catalog.json").write_bytes((edge_deployment["bundle"] / "catalog.json").read_bytes())
    r = subprocess.run([*VB, "import", "bundle", str(out), "--config", str(cfg2), "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["chunks"] == edge_deployment["counts"]["chunks"]
    assert len(IngestState(target / "state.sqlite").all()) == edge_deployment["counts"]["documents"]
