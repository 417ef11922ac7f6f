"""VectorStore adapter for Qdrant Edge (``qdrant-edge-py``): an in-process shard on disk.

One shard directory = one collection, opened by one process at a time: ``EdgeStore`` takes an
exclusive lock (``edge_lock.ShardLock``, ``<shard>.lock``) before it opens the shard, so a second
process gets a clear ``StoreLocked`` error instead of a second writer on the same files. Every
write is followed by ``flush()``, so an acknowledged upsert or delete survives a SIGKILL.

Erasure: deleted points stay in segment files and the write-ahead log until they are rewritten.
``vacuum()`` rebuilds the shard from its live points into ``<shard>.vacuum`` while the old shard
keeps serving, then swaps the directories (``<shard>.old`` on the way; a killed swap is finished or
undone on the next open), so an erased document's text is in no file under the shard afterwards.

Threads: every read holds the shard's reader lock, the swap (vacuum, close, create) its writer lock
(``readerwriterlock``, writer-preferring), so a query during a vacuum runs on the old shard or waits
for the new one: never on a closed or missing shard. Writes are serialised by a mutex that the
vacuum holds from its first page to the swap, so no write lands in the old shard after its copy.

``store.path`` names the collection. Its shard is that directory, unless a pointer file
``<path>.current`` (the Edge equivalent of a Qdrant alias, written by ``vraagbaak reindex`` and
swapped with ``os.replace``) names a sibling directory. Each shard records the embedder that
filled it in ``vraagbaak-collection.json``.

Scores: ``dense`` = cosine similarity; ``sparse`` = Σ idf·w_doc·w_query (BM25 with the
IDF modifier); ``hybrid`` = the fused score (RRF: Σ 1/((rank+1)/weight + k − 1); DBSF: sum
of the normalised input scores).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from readerwriterlock.rwlock import RWLockWrite

from retrieval.stores.common import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    check_query,
    check_record,
    check_upsert,
    collection_record,
)
from retrieval.stores.edge_lock import ShardLock
from vraagbaak_core.errors import StoreLocked
from vraagbaak_core.types import (
    Chunk,
    Condition,
    Hit,
    MatchAny,
    RangeLte,
    SearchFilter,
    SparseVector,
    StoredPoint,
    StoreQuery,
)

try:
    import qdrant_edge as qe
except ImportError as err:  # pragma: no cover - core dependency
    raise ImportError("the Qdrant Edge store needs `qdrant-edge-py` (pip install qdrant-edge-py)") from err

_SCROLL_PAGE = 1000
RECORD_FILE = "vraagbaak-collection.json"


def pointer_file(base: Path) -> Path:
    return base.parent / (base.name + ".current")


def current_shard_dir(base: Path) -> Path:
    """The shard directory ``store.path`` stands for now (its pointer's target, else itself)."""
    ptr = pointer_file(base)
    try:
        name = ptr.read_text().strip()
    except FileNotFoundError:
        return base
    if not name or "/" in name or name in (".", ".."):
        raise RuntimeError(f"{ptr} holds {name!r}, not a sibling directory name")
    return base.parent / name


def switch_shard(base: Path, target: Path) -> None:
    """Point ``store.path`` at ``target`` (a sibling directory) atomically: write, fsync, rename."""
    if target.parent != base.parent:
        raise ValueError(f"{target} is not next to {base}")
    ptr = pointer_file(base)
    tmp = ptr.with_name(ptr.name + ".tmp")
    with tmp.open("w") as f:
        f.write(target.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, ptr)
    dir_fd = os.open(base.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


StoreBusy = StoreLocked  # the shard is open in another process (the name reindex knows)
_VACUUM_DONE = "vraagbaak-vacuum-complete"
EDGE_ERASURE = ("points deleted and the Edge shard rebuilt from its live points (vacuumed): the erased text "
                "left its segments and WAL; copies outside the shard (file-system snapshots, backups) remain")


def _condition(cond: Condition) -> Any:
    if isinstance(cond, MatchAny):
        return qe.FieldCondition(key=cond.key, match=qe.MatchAny(list(cond.values)))
    if isinstance(cond, RangeLte):
        return qe.FieldCondition(key=cond.key, range=qe.RangeFloat(lte=float(cond.value)))
    raise TypeError(f"unsupported filter condition {cond!r}")  # pragma: no cover - exhaustive


def _to_filter(flt: SearchFilter | None) -> qe.Filter | None:
    if flt is None or not (flt.must or flt.must_not):
        return None
    return qe.Filter(
        must=[_condition(c) for c in flt.must] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )


def _doc_filter(doc_id: str) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key="doc_id", match=qe.MatchValue(doc_id))])


def _sparse(indices: Sequence[int], values: Sequence[float]) -> qe.SparseVector:
    return qe.SparseVector(indices=list(indices), values=list(values))


class EdgeStore:
    """Implements ``vraagbaak_core.ports.VectorStore`` on a Qdrant Edge shard."""

    def __init__(self, path: Path, resolve: bool = True) -> None:
        """``path`` is ``store.path`` (followed through its pointer file), or with ``resolve=False``
        one shard directory exactly (``vraagbaak reindex`` opens its target like that)."""
        self.base = path
        self.path = current_shard_dir(path) if resolve else path
        self._lock = threading.RLock()  # writes, and a vacuum from its first page to its swap
        self._swap = RWLockWrite()  # readers share the shard; the swap (vacuum, close, create) is exclusive
        self._shard: qe.EdgeShard | None = None
        # one process per shard: the lock is on the shard directory actually opened (store.path's
        # current shard, or reindex's target); it sits next to it, so a vacuum's swap keeps it
        self._file_lock = ShardLock(self.path)  # raises StoreLocked while another process has it open
        try:
            self._finish_vacuum()
            if (self.path / "edge_config.json").is_file():
                try:
                    self._shard = qe.EdgeShard.load(str(self.path))
                except Exception as err:
                    if "WouldBlock" in str(err):
                        raise StoreBusy(
                            f"the Qdrant Edge shard {self.path} is open in another process (a running API?); "
                            "one process at a time can open it"
                        ) from None
                    raise
        except BaseException:
            self._file_lock.release()
            raise

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise RuntimeError(f"no Qdrant Edge shard at {self.path}; call ensure_collection first")
        return self._shard

    def ensure_collection(self, dense_dim: int, embedder: str | None = None) -> None:
        """Create the shard, or check that ``embedder`` (its name) and ``dense_dim`` filled it."""
        with self._lock:
            if self._shard is not None:
                have = self._shard_dim()
                record = self.collection_record()
                if record is None and have is not None:
                    record = {"embedder": None, "dimension": have}
                check_record(f"the Qdrant Edge shard {self.path}", record, dense_dim, embedder)
                if embedder and (record is None or not record.get("embedder")):
                    self._write_record(collection_record(embedder, dense_dim))  # made before records existed
                return
            self.path.mkdir(parents=True, exist_ok=True)
            shard = _create_shard(self.path, dense_dim)
            with self._swap.gen_wlock():
                self._shard = shard
            if embedder:
                self._write_record(collection_record(embedder, dense_dim))

    def collection_record(self) -> dict[str, object] | None:
        """The embedder record of the shard: ``{"embedder", "dimension", "state"}``, or None."""
        try:
            data = json.loads((self.path / RECORD_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise RuntimeError(f"{self.path / RECORD_FILE} is unreadable: {err}") from None
        return data if isinstance(data, dict) else None

    def set_collection_state(self, state: str) -> None:
        record = self.collection_record()
        if record is None:
            raise RuntimeError(f"the shard at {self.path} has no embedder record")
        record["state"] = state
        self._write_record(record)

    def _write_record(self, record: dict[str, object]) -> None:
        path = self.path / RECORD_FILE
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _shard_dim(self) -> int | None:
        try:
            cfg = json.loads((self.path / "edge_config.json").read_text())
            return int(cfg["vectors"][DENSE]["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        check_upsert(points)
        batch = []
        for p in points:
            vector: dict[str, Any] = {DENSE: list(p.dense)}
            if p.sparse is not None and not p.sparse.is_empty():
                vector[SPARSE] = _sparse(p.sparse.indices, p.sparse.values)
            batch.append(qe.Point(id=p.chunk.chunk_id, vector=vector, payload=p.chunk.payload()))
        self._write(qe.UpdateOperation.upsert_points(batch), required=True)

    def _write(self, operation: Any, required: bool = False) -> None:
        """Apply one update and flush it (an acknowledged write survives a SIGKILL). Without a shard:
        an error when ``required`` (an upsert), else nothing to do (a delete)."""
        with self._lock:
            if self._shard is None:
                if required:
                    raise RuntimeError(f"no Qdrant Edge shard at {self.path}; call ensure_collection first")
                return
            self._shard.update(operation)
            self._shard.flush()

    def query_batch(self, requests: Sequence[StoreQuery]) -> list[list[Hit]]:
        """In-process: no round trip to save, so the requests run one after another."""
        return [self.query(r) for r in requests]

    def query(self, request: StoreQuery) -> list[Hit]:
        check_query(request)
        flt = _to_filter(request.filter)
        dense_q = qe.Query.Nearest(list(request.dense), using=DENSE) if request.dense is not None else None
        sparse_q = None
        if request.sparse is not None and not request.sparse.is_empty():
            sparse_q = qe.Query.Nearest(_sparse(request.sparse.indices, request.sparse.values), using=SPARSE)
        if request.mode == "dense":
            req = qe.QueryRequest(limit=request.limit, query=dense_q, filter=flt, with_payload=True)
        elif request.mode == "sparse":
            if sparse_q is None:
                return []
            req = qe.QueryRequest(limit=request.limit, query=sparse_q, filter=flt, with_payload=True)
        else:
            prefetches = [qe.Prefetch(limit=request.prefetch_limit, query=dense_q, filter=flt)]
            weights = [request.fusion.weights[0]]
            if sparse_q is not None:
                prefetches.append(qe.Prefetch(limit=request.prefetch_limit, query=sparse_q, filter=flt))
                weights.append(request.fusion.weights[1])
            fusion: Any = (
                qe.Fusion.Rrf(k=request.fusion.k, weights=weights)
                if request.fusion.method == "rrf"
                else qe.Fusion.Dbsf()
            )
            req = qe.QueryRequest(
                limit=request.limit, prefetches=prefetches, query=fusion, filter=flt, with_payload=True
            )
        with self._swap.gen_rlock():
            if self._shard is None:
                return []
            found = self._shard.query(req)
        return [Hit(chunk=Chunk.from_payload(dict(p.payload or {})), score=float(p.score)) for p in found]

    def delete_points(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            self._write(qe.UpdateOperation.delete_points(list(point_ids)))

    def delete_document(self, doc_id: str) -> None:
        self._write(qe.UpdateOperation.delete_points_by_filter(_doc_filter(doc_id)))

    def set_document_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        self._write(qe.UpdateOperation.set_payload_by_filter(_doc_filter(doc_id), payload))

    def count(self, doc_id: str | None = None) -> int:
        flt = _doc_filter(doc_id) if doc_id is not None else None
        with self._swap.gen_rlock():
            if self._shard is None:
                return 0
            return int(self._shard.count(qe.CountRequest(exact=True, filter=flt)))

    def point_ids(self, doc_id: str) -> list[str]:
        ids: list[str] = []
        offset: Any = None
        while True:
            with self._swap.gen_rlock():
                if self._shard is None:
                    return []
                records, offset = self._shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=_SCROLL_PAGE, filter=_doc_filter(doc_id), with_payload=False
                    )
                )
            ids.extend(str(r.id) for r in records)
            if offset is None:
                return ids

    def scroll_points(self, offset: str | None, limit: int) -> tuple[list[StoredPoint], str | None]:
        """One page of stored points (payload and vectors) in id order, and the next page's offset."""
        with self._swap.gen_rlock():
            if self._shard is None:
                return [], None
            records, nxt = self._shard.scroll(
                qe.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
            )
        out = []
        for r in records:
            vec: Any = r.vector or {}
            sp = vec.get(SPARSE)
            out.append(StoredPoint(
                chunk=Chunk.from_payload(dict(r.payload or {})),
                dense=list(vec.get(DENSE) or []),
                sparse=SparseVector(tuple(sp.indices), tuple(sp.values)) if sp is not None else None,
            ))
        return out, (str(nxt) if nxt is not None else None)

    def existing_ids(self, point_ids: Sequence[str]) -> set[str]:
        if not point_ids:
            return set()
        with self._swap.gen_rlock():
            if self._shard is None:
                return set()
            return {str(r.id) for r in self._shard.retrieve(list(point_ids), False, False)}

    def set_payload(self, point_ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if point_ids:
            self._write(qe.UpdateOperation.set_payload(list(point_ids), dict(payload)))

    def vacuum(self) -> str:
        """Rebuild the shard from its live points, so deleted ones leave segments and the WAL.

        The copy is built beside the shard while the old one keeps answering queries; writes wait
        (the write mutex) from the first page to the swap. Only the swap itself (close the old shard,
        two renames, load the new one) holds the writer lock, so a query during it waits for the new
        shard instead of finding none."""
        with self._lock:
            if self._shard is None:
                return EDGE_ERASURE
            dim = self._shard_dim()
            if dim is None:
                raise RuntimeError(f"cannot read the vector size of {self.path}")
            tmp, old = _siblings(self.path)
            shutil.rmtree(tmp, ignore_errors=True)
            fresh = _create_shard(tmp, dim)
            try:
                offset: Any = None
                while True:
                    # no reader lock needed: only a holder of self._lock swaps the shard
                    records, offset = self._shard.scroll(
                        qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, with_payload=True, with_vector=True)
                    )
                    points = [
                        qe.Point(id=r.id, vector=r.vector, payload=dict(r.payload or {}))
                        for r in records
                        if r.vector is not None
                    ]
                    if points:
                        fresh.update(qe.UpdateOperation.upsert_points(points))
                    if offset is None:
                        break
                fresh.flush()
            finally:
                fresh.close()
            if (self.path / RECORD_FILE).is_file():  # the embedder record moves with the shard
                shutil.copy2(self.path / RECORD_FILE, tmp / RECORD_FILE)
            _fsync_write(tmp / _VACUUM_DONE)
            with self._swap.gen_wlock():
                self._shard.close()
                self._shard = None
                os.rename(self.path, old)
                os.rename(tmp, self.path)
                _fsync_dir(self.path.parent)
                (self.path / _VACUUM_DONE).unlink()
                self._shard = qe.EdgeShard.load(str(self.path))
            shutil.rmtree(old)
            return EDGE_ERASURE

    def _finish_vacuum(self) -> None:
        """Finish (rebuild complete) or undo (incomplete) a vacuum that a kill interrupted."""
        tmp, old = _siblings(self.path)
        if not self.path.exists() and old.exists():
            if (tmp / _VACUUM_DONE).is_file():
                os.rename(tmp, self.path)
            else:
                os.rename(old, self.path)
            _fsync_dir(self.path.parent)
        (self.path / _VACUUM_DONE).unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        with self._lock, self._swap.gen_wlock():
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
            self._file_lock.release()

    def __del__(self) -> None:  # a store dropped without close() must not keep its path locked
        lock = getattr(self, "_file_lock", None)
        if lock is not None:
            lock.release()


def _create_shard(path: Path, dense_dim: int) -> qe.EdgeShard:
    config = qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dense_dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    shard = qe.EdgeShard.create(str(path), config)
    for name, kind in INDEXED_FIELDS.items():
        schema = qe.PayloadSchemaType.Integer if kind == "integer" else qe.PayloadSchemaType.Keyword
        shard.update(qe.UpdateOperation.create_field_index(name, schema))
    shard.flush()
    return shard


def _siblings(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".vacuum"), path.with_name(path.name + ".old")


def _fsync_write(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
