"""Building an Ingestor on the real components (packaged embedder, Qdrant Edge, BM25 encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval_fixtures import embedder

from ingest.catalog_factory import build_catalog
from ingest.pipeline import Ingestor
from retrieval.analysis import Bm25SparseEncoder
from retrieval.stores.edge import EdgeStore
from vraagbaak_core.settings import CatalogSettings, IngestSettings, PatientDataSettings, Settings, StoreSettings


def make_settings(tmp: Path, catalog_url: str | None = None, **ingest: Any) -> Settings:
    """``catalog_url``: a shared catalog (``postgresql://…``); None: the SQLite state file under ``tmp``."""
    ingest.setdefault("state_path", tmp / "state.sqlite")
    ingest.setdefault("originals_dir", tmp / "originals")
    # The patient-data guard loads deduce (~1 GB, seconds) per parser worker: the tests of the guard
    # (tests/test_patientdata.py) switch it on; the rest test other things.
    ingest.setdefault("patient_data", PatientDataSettings(enabled=False))
    return Settings(
        store=StoreSettings(backend="edge", path=tmp / "edge"),
        ingest=IngestSettings(**ingest),
        catalog=CatalogSettings(url=catalog_url),  # type: ignore[arg-type]
    )


def make_ingestor(tmp: Path, catalog_url: str | None = None, **ingest: Any) -> Ingestor:
    settings = make_settings(tmp, catalog_url, **ingest)
    return Ingestor(
        settings,
        embedder(),
        Bm25SparseEncoder(),
        EdgeStore(settings.store.path),
        build_catalog(settings),
    )
