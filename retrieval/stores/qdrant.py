"""VectorStore adapter for qdrant-client: a Qdrant server / cluster URL, or ``:memory:``.

Same collection layout and query shapes as the Edge adapter (``retrieval.stores.edge``),
so results agree. Payload indexes are created on a server; qdrant-client's local mode
has none (it filters by scanning) and is only meant for tests and evaluation.
Writes wait for the server's acknowledgement (``wait=True``).

Scores: ``dense`` = cosine similarity; ``sparse`` = Σ idf·w_doc·w_query; ``hybrid`` = the
fused score (RRF: Σ 1/((rank+1)/weight + k − 1); DBSF: sum of normalised input scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retrieval.stores.common import DENSE, INDEXED_FIELDS, SPARSE, check_query, check_upsert
from vraagbaak_core.types import Chunk, Hit, MatchAny, RangeLte, SearchFilter, StoredPoint, StoreQuery

try:
    from qdrant_client import QdrantClient, models
except ImportError as err:  # pragma: no cover - core dependency
    raise ImportError("the Qdrant server store needs `qdrant-client` (pip install qdrant-client)") from err

_SCROLL_PAGE = 1000


def _to_filter(flt: SearchFilter | None) -> models.Filter | None:
    if flt is None or not flt.must:
        return None
    conditions: list[Any] = []
    for cond in flt.must:
        if isinstance(cond, MatchAny):
            conditions.append(
                models.FieldCondition(key=cond.key, match=models.MatchAny(any=list(cond.values)))
            )
        elif isinstance(cond, RangeLte):
            conditions.append(models.FieldCondition(key=cond.key, range=models.Range(lte=float(cond.value))))
        else:  # pragma: no cover - exhaustive over Condition
            raise TypeError(f"unsupported filter condition {cond!r}")
    return models.Filter(must=conditions)


def _doc_filter(doc_id: str) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])


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
    ) -> None:
        self.collection = collection
        self.local = url == ":memory:"
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        if self.local:
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout_s)))

    def _exists(self) -> bool:
        return bool(self.client.collection_exists(self.collection))

    def ensure_collection(self, dense_dim: int) -> None:
        if self._exists():
            info = self.client.get_collection(self.collection)
            vectors = info.config.params.vectors
            have = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
            if have is not None and have != dense_dim:
                raise ValueError(
                    f"collection {self.collection!r} holds {have}-dim dense vectors, the embedder makes "
                    f"{dense_dim}; re-ingest into a new collection"
                )
            return
        self.client.create_collection(
            self.collection,
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
        check_query(request)
        if not self._exists():
            return []
        flt = _to_filter(request.filter)
        sparse_q = None
        if request.sparse is not None and not request.sparse.is_empty():
            sparse_q = models.SparseVector(
                indices=list(request.sparse.indices), values=list(request.sparse.values)
            )
        common: dict[str, Any] = {"limit": request.limit, "query_filter": flt, "with_payload": True}
        if request.mode == "dense":
            res = self.client.query_points(
                self.collection, query=list(request.dense or []), using=DENSE, **common
            )
        elif request.mode == "sparse":
            if sparse_q is None:
                return []
            res = self.client.query_points(self.collection, query=sparse_q, using=SPARSE, **common)
        else:
            prefetch = [
                models.Prefetch(
                    query=list(request.dense or []), using=DENSE, limit=request.prefetch_limit, filter=flt
                )
            ]
            weights = [request.fusion.weights[0]]
            if sparse_q is not None:
                prefetch.append(
                    models.Prefetch(query=sparse_q, using=SPARSE, limit=request.prefetch_limit, filter=flt)
                )
                weights.append(request.fusion.weights[1])
            fusion: Any = (
                models.RrfQuery(rrf=models.Rrf(k=request.fusion.k, weights=weights))
                if request.fusion.method == "rrf"
                else models.FusionQuery(fusion=models.Fusion.DBSF)
            )
            res = self.client.query_points(self.collection, prefetch=prefetch, query=fusion, **common)
        return [
            Hit(chunk=Chunk.from_payload(dict(p.payload or {})), score=float(p.score)) for p in res.points
        ]

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

    def drop_collection(self) -> None:
        """Remove the collection (evaluation runs use throwaway collections)."""
        if self._exists():
            self.client.delete_collection(self.collection)

    def close(self) -> None:
        self.client.close()
