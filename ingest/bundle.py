"""The exit bundle: everything a deployment holds, in open formats, and its restore.

Layout of a bundle directory (all text is UTF-8; see ``docs/exit.md``)::

    manifest.json          format, version, counts, and {path: {sha256, bytes}} for every other file
    chunks.jsonl           one chunk per line, sorted by id: {"id", "payload", "dense", "sparse"}
    chunks.parquet         the same rows as Parquet (only where pyarrow is installed)
    catalog.json           the catalog through its ports (``state``: source sets and documents;
                           ``quarantine``; ``feedback``: answer receipts and votes), the same shape
                           from SQLite or PostgreSQL
    models.json            the embedder's identity, dimension and the sha256 of its files; the
                           sparse encoder's settings; the collection record
    audit/audit.jsonl      the audit chain, the stored lines exactly as the sink holds them
    originals/<id[:2]>/<doc_id>  the original file of each document, byte for byte

``export_bundle`` writes into an empty (or new) directory; ``import_bundle`` first verifies the
manifest (every listed file present with its sha256 and size, no file that is not listed) and
refuses the bundle otherwise, then loads it into an empty deployment: the vector store (either
backend), the catalogs, the originals and, for the file audit sink, the chain.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.originals import OriginalStore
from vraagbaak_core.audit import AuditWriteError
from vraagbaak_core.errors import VraagbaakError
from vraagbaak_core.ports import AuditSink, Catalog, FeedbackLog, Quarantine, VectorStore
from vraagbaak_core.types import Chunk, SparseVector, StoredPoint

FORMAT = "vraagbaak-bundle"
VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
PARQUET = "chunks.parquet"
CATALOG = "catalog.json"
MODELS = "models.json"
AUDIT = "audit/audit.jsonl"
ORIGINALS = "originals"
_PAGE = 256
_BLOCK = 1 << 20


class BundleError(VraagbaakError):
    """The bundle cannot be written, is damaged, or the target deployment is not empty."""


@dataclass
class BundleReport:
    path: str
    chunks: int = 0
    documents: int = 0
    originals: int = 0
    audit_records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    parquet: bool = False
    notes: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ chunks


def point_line(point: StoredPoint) -> str:
    """The canonical JSON line of one stored chunk: keys sorted, sparse entries by index, every
    vector value a float32 (what Qdrant stores), written as the shortest decimal of its double."""
    sparse: dict[str, list[Any]] | None = None
    if point.sparse is not None:
        pairs = sorted(zip(point.sparse.indices, point.sparse.values, strict=True))
        sparse = {"indices": [int(i) for i, _ in pairs], "values": [float(np.float32(v)) for _, v in pairs]}
    row = {
        "id": point.chunk.chunk_id,
        "payload": point.chunk.payload(),
        "dense": [float(x) for x in np.asarray(point.dense, dtype=np.float32)],
        "sparse": sparse,
    }
    return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def point_from_line(line: str) -> StoredPoint:
    row = json.loads(line)
    sp = row.get("sparse")
    return StoredPoint(
        chunk=Chunk.from_payload(dict(row["payload"])),
        dense=[float(x) for x in row["dense"]],
        sparse=SparseVector(tuple(sp["indices"]), tuple(sp["values"])) if sp else None,
    )


def all_points(store: VectorStore) -> Iterator[StoredPoint]:
    offset: str | None = None
    while True:
        page, offset = store.scroll_points(offset, _PAGE)
        yield from page
        if offset is None:
            return


def _write_parquet(jsonl: Path, dest: Path) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    schema = pa.schema([
        ("id", pa.string()), ("doc_id", pa.string()), ("text", pa.string()),
        ("payload_json", pa.string()), ("dense", pa.list_(pa.float32())),
        ("sparse_indices", pa.list_(pa.uint32())), ("sparse_values", pa.list_(pa.float32())),
    ])
    with pq.ParquetWriter(dest, schema) as writer, jsonl.open(encoding="utf-8") as f:
        batch: list[dict[str, Any]] = []
        for line in f:
            row = json.loads(line)
            sp = row["sparse"] or {"indices": [], "values": []}
            batch.append({
                "id": row["id"], "doc_id": row["payload"]["doc_id"], "text": row["payload"]["text"],
                "payload_json": json.dumps(row["payload"], ensure_ascii=False, sort_keys=True),
                "dense": row["dense"], "sparse_indices": sp["indices"], "sparse_values": sp["values"],
            })
            if len(batch) >= 1024:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return True


# ------------------------------------------------------------------ catalogs (old bundles)


def catalog_dump(dump: Mapping[str, Any]) -> dict[str, Any]:
    """A bundle's ``state`` as a catalog dump; bundles written before the Catalog port hold the
    SQLite state file's own dump (JSON columns as text), converted here."""
    from ingest.catalog import DOC_COLUMNS, DUMP_FORMAT, JSON_COLUMNS, SET_COLUMNS, check_dump, empty_dump

    if dump.get("format") == DUMP_FORMAT:
        check_dump(dump)
        return dict(dump)
    if "schema" not in dump or "tables" not in dump:
        raise BundleError("catalog.json: the state database is neither a catalog dump nor a SQLite dump")
    out = empty_dump("sqlite")
    docs = dump["tables"].get("documents") or {"columns": list(DOC_COLUMNS), "rows": []}
    cols = list(docs["columns"])
    rows = []
    for row in docs["rows"]:
        rows.append([json.loads(v) if c in JSON_COLUMNS and isinstance(v, str) else v
                     for c, v in zip(cols, row, strict=True)])
    out["tables"]["documents"] = {"columns": cols, "rows": rows}
    ss = dump["tables"].get("source_sets") or {"columns": list(SET_COLUMNS), "rows": []}
    out["tables"]["source_sets"] = {"columns": list(ss["columns"]), "rows": ss["rows"]}
    return out


def quarantine_dump(dump: Mapping[str, Any]) -> dict[str, Any]:
    """A bundle's ``quarantine`` as a catalog dump (older bundles: the SQLite file's dump, converted)."""
    from ingest.catalog import DUMP_FORMAT, empty_dump
    from ingest.quarantine import QUARANTINE_COLUMNS

    if dump.get("format") == DUMP_FORMAT:
        return dict(dump)
    if "schema" not in dump or "tables" not in dump:
        raise BundleError("catalog.json: the quarantine is neither a catalog dump nor a SQLite dump")
    t = dump["tables"].get("quarantine") or {"columns": list(QUARANTINE_COLUMNS), "rows": []}
    out = empty_dump("sqlite")
    out["tables"]["quarantine"] = {"columns": list(t["columns"]), "rows": [
        [json.loads(v) if c == "counts" and isinstance(v, str) else v for c, v in zip(t["columns"], row, strict=True)]
        for row in t["rows"]
    ]}
    return out


def feedback_dump(dump: Mapping[str, Any]) -> dict[str, Any]:
    """A bundle's ``feedback`` as a catalog dump (older bundles: the SQLite file's dump, converted)."""
    from ingest.catalog import DUMP_FORMAT, empty_dump

    if dump.get("format") == DUMP_FORMAT:
        return dict(dump)
    if "schema" not in dump or "tables" not in dump:
        raise BundleError("catalog.json: the feedback is neither a catalog dump nor a SQLite dump")
    out = empty_dump("sqlite")
    for name, t in dump["tables"].items():
        if name not in ("answers", "feedback"):
            continue
        rows = []
        for row in t["rows"]:
            d = dict(zip(t["columns"], row, strict=True))
            if name == "answers":
                d["documents"] = json.loads(d["documents"]) if isinstance(d["documents"], str) else d["documents"]
                d["abstained"] = bool(d["abstained"])
            rows.append([d[c] for c in t["columns"]])
        out["tables"][name] = {"columns": list(t["columns"]), "rows": rows}
    return out


# ------------------------------------------------------------------ manifest


def _listed_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() != MANIFEST)


def verify_bundle(root: Path) -> dict[str, Any]:
    """The manifest, when every file it lists is there unchanged and nothing else is; BundleError otherwise."""
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{root}: no {MANIFEST}; not a Vraagbaak bundle")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except ValueError as err:
        raise BundleError(f"{mpath}: unreadable manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{mpath}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise BundleError(f"{mpath}: bundle version {manifest.get('version')}, this Vraagbaak reads {VERSION}")
    files: dict[str, Any] = manifest.get("files") or {}
    problems: list[str] = []
    for rel, want in sorted(files.items()):
        p = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{rel}: path outside the bundle")
        elif not p.is_file():
            problems.append(f"{rel}: missing")
        elif p.stat().st_size != want.get("bytes") or _sha256(p) != want.get("sha256"):
            problems.append(f"{rel}: sha256 or size differs from the manifest")
    for p in _listed_files(root):
        rel = p.relative_to(root).as_posix()
        if rel not in files:
            problems.append(f"{rel}: not in the manifest")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise BundleError(f"{root}: bundle fails its manifest, nothing imported: {shown}")
    return manifest


# ------------------------------------------------------------------ export


def export_bundle(
    dest: Path,
    *,
    store: VectorStore,
    originals: OriginalStore,
    catalog: Catalog,
    quarantine: Quarantine,
    feedback: FeedbackLog,
    models: Mapping[str, Any],
    audit_sink: AuditSink | None,
    audit_upto: int | None = None,
) -> BundleReport:
    """Write the bundle into ``dest`` (new or empty); ``catalog``, ``quarantine`` and ``feedback`` go
    into ``catalog.json`` as ``databases.state``, ``.quarantine`` and ``.feedback``."""
    t0 = time.perf_counter()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BundleError(f"{dest} exists and is not an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    report = BundleReport(path=str(dest))

    with (dest / CHUNKS).open("w", encoding="utf-8") as f:
        lines = sorted(point_line(p) for p in all_points(store))
        for line in lines:
            f.write(line + "\n")
        report.chunks = len(lines)
        del lines
    report.parquet = _write_parquet(dest / CHUNKS, dest / PARQUET)
    if not report.parquet:
        report.notes.append("pyarrow is not installed: no chunks.parquet (chunks.jsonl holds the same rows)")

    databases: dict[str, Any] = {"state": catalog.dump(), "quarantine": quarantine.dump(),
                                 "feedback": feedback.dump()}
    t = databases["state"]["tables"]["documents"]
    doc_ids = [str(r[t["columns"].index("doc_id")]) for r in t["rows"]]
    _write_json(dest / CATALOG, {"format": FORMAT, "databases": databases})
    report.documents = len(doc_ids)

    for doc_id in doc_ids:
        if originals.exists(doc_id):
            out = dest / ORIGINALS / doc_id[:2] / doc_id
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(originals.path(doc_id), out)
            report.originals += 1
    if report.originals < len(doc_ids):
        report.notes.append(f"{len(doc_ids) - report.originals} documents have no stored original")

    _write_json(dest / MODELS, dict(models) | {"collection": store.collection_record()})

    (dest / AUDIT).parent.mkdir(parents=True, exist_ok=True)
    with (dest / AUDIT).open("w", encoding="utf-8") as f:
        if audit_sink is not None:
            for e in audit_sink.entries(audit_upto):
                if e.complete:
                    f.write(e.raw.rstrip("\n") + "\n")
                    report.audit_records += 1

    files = {}
    for p in _listed_files(dest):
        files[p.relative_to(dest).as_posix()] = {"sha256": _sha256(p), "bytes": p.stat().st_size}
        report.bytes += p.stat().st_size
    _write_json(dest / MANIFEST, {
        "format": FORMAT,
        "version": VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"chunks": report.chunks, "documents": report.documents, "originals": report.originals,
                   "audit_records": report.audit_records},
        "files": files,
    })
    report.seconds = time.perf_counter() - t0
    return report


# ------------------------------------------------------------------ import


def import_bundle(
    src: Path,
    *,
    store: VectorStore,
    originals: OriginalStore,
    catalog: Catalog,
    quarantine: Quarantine,
    feedback: FeedbackLog,
    embedder_name: str,
    embedder_dimension: int,
    audit_file: Path | None,
    audit_sink: AuditSink | None = None,
) -> BundleReport:
    """Verify ``src`` and load it into an empty deployment; BundleError (nothing written) when it can't.

    ``audit_file``: the file sink's path, to restore the chain into (it must be absent or empty);
    None for a database sink: then ``audit_sink`` (PostgreSQL, must be empty) gets the chain's lines
    as they are, through its ``restore``; with neither, the chain stays in the bundle.
    """
    t0 = time.perf_counter()
    manifest = verify_bundle(src)
    report = BundleReport(path=str(src), bytes=sum(int(f["bytes"]) for f in manifest["files"].values()))
    models = json.loads((src / MODELS).read_text(encoding="utf-8"))
    emb = models.get("embedder") or {}
    if emb.get("name") != embedder_name or emb.get("dimension") != embedder_dimension:
        raise BundleError(
            f"the bundle's chunks were embedded by {emb.get('name')} (dim {emb.get('dimension')}); "
            f"this deployment is configured with {embedder_name} (dim {embedder_dimension}). "
            "Import with the bundle's embedder, then run `vraagbaak reindex` to change it"
        )
    if store.count() > 0:
        raise BundleError(f"the store already holds {store.count()} chunks; import into an empty deployment")
    databases = json.loads((src / CATALOG).read_text(encoding="utf-8"))["databases"]
    state = databases.get("state")
    if state is not None:
        state = catalog_dump(state)
    quarantined = databases.get("quarantine")
    if quarantined is not None:
        quarantined = quarantine_dump(quarantined)
    if catalog.all() or catalog.source_sets():
        raise BundleError(f"the catalog {catalog.location} is not empty; import into an empty deployment")
    if quarantine.list(include_released=True):
        raise BundleError(f"the quarantine {quarantine.location} is not empty; import into an empty deployment")
    votes = databases.get("feedback")
    if votes is not None:
        votes = feedback_dump(votes)
    if any(t["rows"] for t in feedback.dump()["tables"].values()):
        raise BundleError(f"the feedback log {feedback.location} is not empty; import into an empty deployment")
    if audit_file is not None and audit_file.is_file() and audit_file.stat().st_size > 0:
        raise BundleError(f"{audit_file} is not empty; import into an empty deployment")
    restore = getattr(audit_sink, "restore", None) if audit_file is None else None
    if audit_sink is not None and restore is not None and audit_sink.mark() > 0:
        raise BundleError(f"the audit chain in {audit_sink.location} is not empty; import into an empty deployment")

    store.ensure_collection(embedder_dimension, embedder_name)
    store.set_collection_state("building")
    batch: list[StoredPoint] = []
    with (src / CHUNKS).open(encoding="utf-8") as f:
        for line in f:
            batch.append(point_from_line(line))
            if len(batch) >= _PAGE:
                store.upsert(batch)
                report.chunks += len(batch)
                batch = []
    if batch:
        store.upsert(batch)
        report.chunks += len(batch)
    if store.count() != manifest["counts"]["chunks"]:
        raise BundleError(f"store holds {store.count()} chunks after import, the bundle {manifest['counts']['chunks']}")
    store.set_collection_state("ready")

    if state is not None:
        catalog.restore(state)
    if quarantined is not None:
        quarantine.restore(quarantined)
    if votes is not None:
        feedback.restore(votes)
    report.documents = int(manifest["counts"]["documents"])

    odir = src / ORIGINALS
    if odir.is_dir():
        for p in sorted(odir.rglob("*")):
            if p.is_file():
                sha = hashlib.sha256(p.read_bytes()).hexdigest()
                if not originals.put_file(p.name, p, sha):
                    raise BundleError(f"{p}: changed while importing")
                report.originals += 1

    apath = src / AUDIT
    if audit_file is not None:
        audit_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(apath, audit_file)
        report.audit_records = sum(1 for _ in apath.open(encoding="utf-8"))
    elif restore is not None and audit_sink is not None:
        with apath.open(encoding="utf-8") as fh:
            try:
                report.audit_records = int(restore(fh))
            except AuditWriteError as err:
                raise BundleError(f"the audit chain could not be restored into {audit_sink.location}: {err}") from err
    else:
        report.notes.append(f"the audit chain stays in {apath} (this audit sink cannot be restored from a bundle)")
    report.seconds = time.perf_counter() - t0
    return report
