"""VectorStore adapter for qdrant-client: a Qdrant server / cluster URL, or ``:memory:``.

Same collection layout and query shapes as the Edge adapter (``retrieval.stores.edge``),
so results agree. Payload indexes are created on a server; qdrant-client's local mode
has none (it filters by scanning) and is only meant for tests and evaluation.
Writes wait for the server's acknowledgement (``wait=True``).

``store.collection`` is an alias: a new collection is created as ``<name>--<embedder>`` with the
alias ``<name>`` pointing at it, so ``vraagbaak reindex`` can switch the alias atomically to a
re-embedded collection. The alias is resolved once, when the store opens: a running API keeps
its collection until it restarts. The embedder that filled a collection is in its metadata.
A collection made before aliases (named ``<name>`` itself) keeps working.

Scores: ``dense`` = cosine similarity; ``sparse`` = Σ idf·w_doc·w_query; ``hybrid`` = the
fused score (RRF: Σ 1/((rank+1)/weight + k − 1); DBSF: sum of normalised input scores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from retrieval.stores.common import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    check_query,
    check_record,
    check_upsert,
    collection_record,
    slug,
)
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
    from qdrant_client import QdrantClient, models
except ImportError as err:  # pragma: no cover - core dependency
    raise ImportError("the Qdrant server store needs `qdrant-client` (pip install qdrant-client)") from err

_SCROLL_PAGE = 1000


def _condition(cond: Condition) -> Any:
    if isinstance(cond, MatchAny):
        return models.FieldCondition(key=cond.key, match=models.MatchAny(any=list(cond.values)))
    if isinstance(cond, RangeLte):
        return models.FieldCondition(key=cond.key, range=models.Range(lte=float(cond.value)))
    raise TypeError(f"unsupported filter condition {cond!r}")  # pragma: no cover - exhaustive


def _to_filter(flt: SearchFilter | None) -> models.Filter | None:
    if flt is None or not (flt.must or flt.must_not):
        return None
    return models.Filter(
        must=[_condition(c) for c in flt.must] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )


def _doc_filter(doc_id: str) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])


QDRANT_ERASURE = (
    "points deleted on the Qdrant server (gone from every query); not vacuumed: their bytes stay in the "
    "server's segments until its optimizer rewrites them, in its WAL until it rotates, and in snapshots "
    "and backups until those expire"
)


class QdrantStore:
    """Implements ``vraagbaak_core.ports.VectorStore`` with qdrant-client."""

    def __init__(
        self,
        url: str,
        collection: str,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        shard_number: int = 1,
        replication_factor: int = 1,
        client: QdrantClient | None = None,
        resolve: bool = True,
    ) -> None:
        """``collection`` is the alias (``store.collection``); with ``resolve=False`` it is one
        collection exactly (``vraagbaak reindex`` opens its target like that)."""
        self.alias = collection
        self.local = url == ":memory:"
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.owns_client = client is None  # close() closes only a client this store made (or was handed)
        if client is not None:
            self.client = client
        elif self.local:
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout_s)))
        self.resolve = resolve  # False: one collection exactly, never behind an alias of its own
        self.collection = (self.alias_target() or collection) if resolve else collection

    def alias_target(self) -> str | None:
        """The collection the alias points at now, or None (no alias)."""
        for a in self.client.get_aliases().aliases:
            if a.alias_name == self.alias:
                return str(a.collection_name)
        return None

    def _exists(self) -> bool:
        return bool(self.client.collection_exists(self.collection))

    def ensure_collection(self, dense_dim: int, embedder: str | None = None) -> None:
        """Create the collection (and its alias), or check that ``embedder`` and ``dense_dim`` filled it."""
        if self._exists():
            info = self.client.get_collection(self.collection)
            vectors = info.config.params.vectors
            have = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
            record = self.collection_record()
            if not record and have is not None:
                record = {"embedder": None, "dimension": have}
            check_record(f"collection {self.collection!r}", record, dense_dim, embedder)
            if embedder and not (record or {}).get("embedder"):
                self._write_record(collection_record(embedder, dense_dim))  # made before records existed
            return
        # a reindex target (resolve=False) is created under its own name (it was named
        # "<alias>--<embedder>--<embedder>" behind an alias of its own, so the switch found no collection)
        create_alias = (self.resolve and self.collection == self.alias
                        and not self.client.collection_exists(self.alias))
        if create_alias:
            self.collection = f"{self.alias}--{slug(embedder or 'default')}"
        self.client.create_collection(
            self.collection,
            metadata={"vraagbaak": collection_record(embedder, dense_dim)} if embedder else None,
            vectors_config={DENSE: models.VectorParams(size=dense_dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            shard_number=None if self.local else self.shard_number,
            replication_factor=None if self.local else self.replication_factor,
        )
        if not self.local:
            for name, kind in INDEXED_FIELDS.items():
                schema = (
                    models.PayloadSchemaType.INTEGER
                    if kind == "integer"
                    else models.PayloadSchemaType.KEYWORD
                )
                self.client.create_payload_index(self.collection, name, field_schema=schema, wait=True)
        if create_alias:
            self.point_alias_at(self.collection)

    def point_alias_at(self, target: str, drop_legacy: bool = False) -> None:
        """Switch the alias to ``target`` in one atomic alias operation."""
        ops: list[Any] = []
        if self.alias_target() is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        elif self.client.collection_exists(self.alias):
            if not drop_legacy:
                raise RuntimeError(
                    f"collection {self.alias!r} is a plain collection, made before aliases; the switch needs "
                    "its name for the alias: rerun with --drop-old to drop it and point the alias at "
                    f"{target!r}"
                )
            self.client.delete_collection(self.alias)
        ops.append(models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=target, alias_name=self.alias)
        ))
        self.client.update_collection_aliases(change_aliases_operations=ops)

    def collection_record(self) -> dict[str, object] | None:
        if not self._exists():
            return None
        meta = self.client.get_collection(self.collection).config.metadata or {}
        rec = meta.get("vraagbaak") if isinstance(meta, dict) else None
        return dict(rec) if isinstance(rec, dict) else None

    def set_collection_state(self, state: str) -> None:
        record = self.collection_record()
        if record is None:
            raise RuntimeError(f"collection {self.collection!r} has no embedder record")
        record["state"] = state
        self._write_record(record)

    def _write_record(self, record: dict[str, object]) -> None:
        self.client.update_collection(self.collection, metadata={"vraagbaak": record})

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        check_upsert(points)
        structs = []
        for p in points:
            vector: dict[str, Any] = {DENSE: list(p.dense)}
            if p.sparse is not None and not p.sparse.is_empty():
                vector[SPARSE] = models.SparseVector(
                    indices=list(p.sparse.indices), values=list(p.sparse.values)
                )
            structs.append(models.PointStruct(id=p.chunk.chunk_id, vector=vector, payload=p.chunk.payload()))
        self.client.upsert(self.collection, points=structs, wait=True)

    def query(self, request: StoreQuery) -> list[Hit]:
        return self.query_batch([request])[0]

    def query_batch(self, requests: Sequence[StoreQuery]) -> list[list[Hit]]:
        """All ``requests`` in one round trip (``query_batch_points``); no ``collection_exists``
        per call: a missing collection is looked up only when the query fails."""
        for r in requests:
            check_query(r)
        built = [self._query_request(r) for r in requests]
        live = [b for b in built if b is not None]
        if not live:
            return [[] for _ in requests]
        try:
            responses = self.client.query_batch_points(self.collection, requests=live)
        except Exception:
            if not self._exists():
                return [[] for _ in requests]
            raise
        out: list[list[Hit]] = []
        it = iter(responses)
        for b in built:
            if b is None:
                out.append([])
                continue
            res = next(it)
            out.append(
                [Hit(chunk=Chunk.from_payload(dict(p.payload or {})), score=float(p.score)) for p in res.points]
            )
        return out

    def _query_request(self, request: StoreQuery) -> models.QueryRequest | None:
        flt = _to_filter(request.filter)
        sparse_q = None
        if request.sparse is not None and not request.sparse.is_empty():
            sparse_q = models.SparseVector(
                indices=list(request.sparse.indices), values=list(request.sparse.values)
            )
        common: dict[str, Any] = {"limit": request.limit, "filter": flt, "with_payload": True}
        if request.mode == "dense":
            return models.QueryRequest(query=list(request.dense or []), using=DENSE, **common)
        if request.mode == "sparse":
            if sparse_q is None:
                return None
            return models.QueryRequest(query=sparse_q, using=SPARSE, **common)
        prefetch = [
            models.Prefetch(query=list(request.dense or []), using=DENSE, limit=request.prefetch_limit, filter=flt)
        ]
        weights = [request.fusion.weights[0]]
        if sparse_q is not None:
            prefetch.append(models.Prefetch(query=sparse_q, using=SPARSE, limit=request.prefetch_limit, filter=flt))
            weights.append(request.fusion.weights[1])
        fusion: Any = (
            models.RrfQuery(rrf=models.Rrf(k=request.fusion.k, weights=weights))
            if request.fusion.method == "rrf"
            else models.FusionQuery(fusion=models.Fusion.DBSF)
        )
        return models.QueryRequest(prefetch=prefetch, query=fusion, **common)

    def delete_points(self, point_ids: Sequence[str]) -> None:
        if not point_ids or not self._exists():
            return
        self.client.delete(
            self.collection, points_selector=models.PointIdsList(points=list(point_ids)), wait=True
        )

    def delete_document(self, doc_id: str) -> None:
        if not self._exists():
            return
        self.client.delete(
            self.collection, points_selector=models.FilterSelector(filter=_doc_filter(doc_id)), wait=True
        )

    def set_document_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        if not self._exists():
            return
        self.client.set_payload(
            self.collection, payload=payload, points=models.FilterSelector(filter=_doc_filter(doc_id)), wait=True
        )

    def count(self, doc_id: str | None = None) -> int:
        if not self._exists():
            return 0
        flt = _doc_filter(doc_id) if doc_id is not None else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def point_ids(self, doc_id: str) -> list[str]:
        if not self._exists():
            return []
        ids: list[str] = []
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=_doc_filter(doc_id),
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            ids.extend(str(r.id) for r in records)
            if offset is None:
                return ids

    def scroll_points(self, offset: str | None, limit: int) -> tuple[list[StoredPoint], str | None]:
        """One page of stored points (payload and vectors) in id order, and the next page's offset."""
        if not self._exists():
            return [], None
        records, nxt = self.client.scroll(
            self.collection, limit=limit, offset=offset, with_payload=True, with_vectors=True
        )
        out = []
        for r in records:
            vec: Any = r.vector if isinstance(r.vector, dict) else {}
            sp = vec.get(SPARSE)
            out.append(StoredPoint(
                chunk=Chunk.from_payload(dict(r.payload or {})),
                dense=[float(x) for x in vec.get(DENSE) or []],
                sparse=SparseVector(tuple(sp.indices), tuple(sp.values)) if sp is not None else None,
            ))
        return out, (str(nxt) if nxt is not None else None)

    def existing_ids(self, point_ids: Sequence[str]) -> set[str]:
        if not point_ids or not self._exists():
            return set()
        found = self.client.retrieve(self.collection, ids=list(point_ids), with_payload=False, with_vectors=False)
        return {str(r.id) for r in found}

    def drop_collection(self) -> None:
        """Remove the collection, and the alias when it points here (evaluation uses throwaway ones)."""
        if self.alias_target() == self.collection:
            self.client.update_collection_aliases(change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            ])
        if self._exists():
            self.client.delete_collection(self.collection)

    def set_payload(self, point_ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if not point_ids or not self._exists():
            return
        self.client.set_payload(
            self.collection, payload=dict(payload), points=models.PointIdsList(points=list(point_ids)), wait=True
        )

    def vacuum(self) -> str:
        """Nothing the client can do: the delete (``wait=True``) took the points out of every query at
        once; the server's optimizer rewrites the segments that held them in its own time, and its WAL,
        snapshots and backups are server configuration (see ARCHITECTURE.md, Erasure)."""
        return QDRANT_ERASURE

    def close(self) -> None:
        if self.owns_client:
            self.client.close()
