"""Re-embed every stored chunk with another embedder into a new collection, then switch over.

The chunks themselves (ids, text, payload, sparse vectors) are copied unchanged from the current
collection, so citations, the ingest state and document ids stay valid; only the dense vector is
recomputed with the new embedder. Steps:

1. the target is ``<store.path>--<embedder>`` (Edge: a sibling shard directory) or
   ``<collection>--<embedder>`` (server); its record says ``state: building`` until it is complete;
2. pages of the source are copied, skipping ids the target already holds: a killed run resumes
   where it stopped;
3. passes repeat until one copies nothing (chunks ingested meanwhile), then chunks deleted from
   the source meanwhile are deleted from the target; the id sets must then be equal;
4. the record becomes ``state: ready`` and the switch is atomic: the Edge pointer file
   ``<store.path>.current`` is replaced with ``os.replace``; on a server the alias is moved in one
   alias operation. The old collection stays until ``drop_old``.

A process that has the old collection open keeps it (and its embedder) until it restarts with the
new embedder settings; opening the new collection with the old embedder is refused by the record.
Inside the API (``serving/it/reindex``) writes are paused for the whole run, and at the switch the
API itself moves to the new collection and embedder (``switch_and_open``), then drops the old one.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from retrieval.stores.common import slug
from vraagbaak_core.errors import EmbeddingInputError, VraagbaakError
from vraagbaak_core.ports import Embedder, VectorStore
from vraagbaak_core.types import StoredPoint

log = logging.getLogger(__name__)

Progress = Callable[["ReindexStatus"], None]


class ReindexError(VraagbaakError):
    """The reindex cannot go on; the current collection is untouched."""


@dataclass
class ReindexStatus:
    source: str = ""
    target: str = ""
    embedder: str = ""
    source_embedder: str = ""
    total: int = 0
    copied: int = 0
    already: int = 0
    removed: int = 0
    built: bool = False  # the target is complete (state ready), switched or not
    switched: bool = False
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""


class Target:
    """Where the new collection goes and how the store's name is switched to it (per backend)."""

    def __init__(self, source: VectorStore, embedder_name: str) -> None:
        from retrieval.stores.edge import EdgeStore
        from retrieval.stores.qdrant import QdrantStore

        self.source = source
        part = slug(embedder_name)
        if isinstance(source, EdgeStore):
            self.kind = "edge"
            self.base = source.base
            self.dir = source.base.parent / f"{source.base.name}--{part}"
            self.name = str(self.dir)
            self.source_name = str(source.path)
        elif isinstance(source, QdrantStore):
            self.kind = "qdrant"
            self.name = f"{source.alias}--{part}"
            self.source_name = source.collection
        else:
            raise ReindexError(f"reindex does not know the store {type(source).__name__}")

    def open(self) -> VectorStore:
        from retrieval.stores.edge import EdgeStore
        from retrieval.stores.qdrant import QdrantStore

        if self.kind == "edge":
            return EdgeStore(self.dir, resolve=False)
        assert isinstance(self.source, QdrantStore)
        return QdrantStore("", self.name, client=self.source.client, resolve=False)

    def open_current(self) -> VectorStore:
        """The store by its name after the switch (Edge: the pointer's target; server: the alias)."""
        from retrieval.stores.edge import EdgeStore
        from retrieval.stores.qdrant import QdrantStore

        if self.kind == "edge":
            return EdgeStore(self.base)
        assert isinstance(self.source, QdrantStore)
        store = QdrantStore("", self.source.alias, client=self.source.client)
        store.owns_client, self.source.owns_client = self.source.owns_client, False  # the client goes with it
        return store

    def retire(self, old: VectorStore) -> None:
        """Close the store the process used before the switch (a server store shares its client)."""
        if self.kind == "edge":
            old.close()

    def switch(self, drop_legacy: bool) -> None:
        from retrieval.stores.edge import switch_shard
        from retrieval.stores.qdrant import QdrantStore

        if self.kind == "edge":
            switch_shard(self.base, self.dir)
        else:
            assert isinstance(self.source, QdrantStore)
            self.source.point_alias_at(self.name, drop_legacy=drop_legacy)


def reindex(
    source: VectorStore,
    embedder: Embedder,
    batch: int = 64,
    progress: Progress | None = None,
    drop_old: bool = False,
    switch: bool = True,
) -> ReindexStatus:
    """Re-embed ``source`` with ``embedder`` into the target collection and switch to it."""
    t0 = time.perf_counter()
    record = source.collection_record() or {}
    status = ReindexStatus(embedder=embedder.name, source_embedder=str(record.get("embedder") or "unrecorded"))
    target = Target(source, embedder.name)
    status.source, status.target = target.source_name, target.name
    if record.get("embedder") == embedder.name and record.get("dimension") == embedder.dimension:
        status.message = f"{target.source_name} is already filled by {embedder.name}; nothing to re-embed"
        if drop_old:
            status.dropped = drop_old_collections(source)
        status.seconds = time.perf_counter() - t0
        return status
    new = target.open()
    try:
        new.ensure_collection(embedder.dimension, embedder.name)
        new.set_collection_state("building")
        seen: set[str] = set()
        for _ in range(5):
            copied = _copy_pass(source, new, embedder, batch, status, seen, progress)
            if copied == 0:
                break
        else:
            raise ReindexError("the source kept changing over 5 passes; run reindex again when ingest is quiet")
        extra = _all_ids(new) - _all_ids(source)
        if extra:
            new.delete_points(sorted(extra))
            status.removed = len(extra)
        if _all_ids(new) != _all_ids(source):
            raise ReindexError(f"{target.name} does not hold exactly the chunks of {target.source_name}")
        status.total = new.count()
        new.set_collection_state("ready")
        status.built = True
    finally:
        new.close()
    if switch:
        target.switch(drop_legacy=drop_old)
        status.switched = True
        status.message = f"switched {target.source_name} -> {target.name}"
        if drop_old:
            status.dropped = drop_old_collections(source, keep=target.name)
    status.seconds = time.perf_counter() - t0
    return status


def switch_and_open(source: VectorStore, embedder: Embedder) -> tuple[VectorStore, Target]:
    """Switch the store's name to the collection ``reindex(..., switch=False)`` built for ``embedder``
    and open it, checked against its record. ``source`` stays open: the caller retires it
    (``Target.retire``) once nothing uses it."""
    target = Target(source, embedder.name)
    target.switch(drop_legacy=False)
    new = target.open_current()
    new.ensure_collection(embedder.dimension, embedder.name)
    return new, target


def _copy_pass(
    source: VectorStore, new: VectorStore, embedder: Embedder, batch: int,
    status: ReindexStatus, seen: set[str], progress: Progress | None,
) -> int:
    status.total = source.count()
    offset: str | None = None
    copied = 0
    while True:
        page, offset = source.scroll_points(offset, batch)
        ids = [p.chunk.chunk_id for p in page]
        have = new.existing_ids(ids)
        todo = [p for p in page if p.chunk.chunk_id not in have]
        fresh = [i for i in have if i not in seen]
        status.already += len(fresh)
        seen.update(ids)
        if todo:
            try:
                vecs = embedder.embed_documents([p.chunk.text for p in todo])
            except EmbeddingInputError as err:
                raise ReindexError(
                    f"{embedder.name} refuses a chunk ({err}); its chunks are longer than the new model takes: "
                    "re-ingest with ingest.chunk_tokens at most its max_tokens instead"
                ) from None
            new.upsert([
                StoredPoint(chunk=p.chunk, dense=vecs[i].tolist(), sparse=p.sparse) for i, p in enumerate(todo)
            ])
            copied += len(todo)
            status.copied += len(todo)
        if progress is not None and page:
            progress(status)
        if offset is None:
            return copied


def _all_ids(store: VectorStore) -> set[str]:
    ids: set[str] = set()
    offset: str | None = None
    while True:
        page, offset = store.scroll_points(offset, 1000)
        ids.update(p.chunk.chunk_id for p in page)
        if offset is None:
            return ids


def drop_old_collections(store: VectorStore, keep: str | None = None) -> list[str]:
    """Remove every collection of this store name that is neither current nor being built."""
    from retrieval.stores.edge import EdgeStore, current_shard_dir
    from retrieval.stores.qdrant import QdrantStore

    dropped: list[str] = []
    if isinstance(store, EdgeStore):
        current = current_shard_dir(store.base)
        candidates = [store.base, *sorted(store.base.parent.glob(store.base.name + "--*"))]
        for d in candidates:
            if d == current or str(d) == keep or not d.is_dir():
                continue
            if d == store.path:
                store.close()  # this process had the old shard open
            try:
                old = EdgeStore(d, resolve=False)
            except Exception as err:  # noqa: BLE001 - open elsewhere: leave it, say so
                log.warning("not dropping %s: %s", d, err)
                continue
            state = (old.collection_record() or {}).get("state")
            old.close()
            if state == "building":
                continue
            shutil.rmtree(d)
            dropped.append(str(d))
    elif isinstance(store, QdrantStore):
        live = store.alias_target() or store.collection
        for c in store.client.get_collections().collections:
            name = str(c.name)
            if name == live or name == keep or not (name == store.alias or name.startswith(store.alias + "--")):
                continue
            probe = QdrantStore("", name, client=store.client, resolve=False)
            if (probe.collection_record() or {}).get("state") == "building":
                continue
            store.client.delete_collection(name)
            dropped.append(name)
    return dropped

