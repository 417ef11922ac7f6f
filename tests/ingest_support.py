"""Building an Ingestor on the real components (packaged embedder, Qdrant Edge, BM25 encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval_fixtures import embedder

from ingest.pipeline import Ingestor
from ingest.state import IngestState
from retrieval.analysis import Bm25SparseEncoder
from retrieval.stores.edge import EdgeStore
from vraagbaak_core.settings import IngestSettings, PatientDataSettings, Settings, StoreSettings


def make_settings(tmp: Path, **ingest: Any) -> Settings:
    ingest.setdefault("state_path", tmp / "state.sqlite")
    ingest.setdefault("originals_dir", tmp / "originals")
    # The patient-data guard loads deduce (~1 GB, seconds) per parser worker: the tests of the guard
    # (tests/test_patientdata.py) switch it on; the rest test other things.
    ingest.setdefault("patient_data", PatientDataSettings(enabled=False))
    return Settings(
        store=StoreSettings(backend="edge", path=tmp / "edge"),
        ingest=IngestSettings(**ingest),
    )


def make_ingestor(tmp: Path, **ingest: Any) -> Ingestor:
    settings = make_settings(tmp, **ingest)
    return Ingestor(
        settings,
        embedder(),
        Bm25SparseEncoder(),
        EdgeStore(settings.store.path),
        IngestState(settings.ingest.state_path),
    )
