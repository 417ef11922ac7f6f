"""Vector store adapters: Qdrant Edge (embedded default) and qdrant-client (server or :memory:)."""

from __future__ import annotations

from vraagbaak_core.ports import VectorStore
from vraagbaak_core.settings import Settings


def build_store(settings: Settings) -> VectorStore:
    """The store the settings name; adapters are imported only when chosen."""
    store = settings.store
    if store.backend == "edge":
        from retrieval.stores.edge import EdgeStore

        return EdgeStore(settings.resolve(store.path))
    from retrieval.stores.qdrant import QdrantStore

    if not store.url:
        raise ValueError("store.url is required when store.backend is 'qdrant'")
    return QdrantStore(
        store.url,
        store.collection,
        api_key=store.api_key,
        timeout_s=store.timeout_s,
        shard_number=store.shard_number,
        replication_factor=store.replication_factor,
    )


__all__ = ["build_store"]
