"""``/api/admin/reindex``: run ``retrieval.reindex`` inside the API process (role ``admin``).

On the embedded default the API holds the Qdrant Edge shard (one process at a time can open
it), so ``vraagbaak reindex --api URL`` asks the running API to do the work: a background
thread reads the collection the API serves and writes the new one, while chat keeps answering
from the old collection with the old embedder.

Writes are paused for the whole run: an upload, an erasure or a quarantine release gets 409
with ``Retry-After`` (an estimate from the progress) instead of landing in a collection that is
being copied. At the switch the API moves to the new collection and its embedder on every request
path at once (``Components.switch_index``), then drops the old collection, so no copy of a
document erased afterwards stays behind. Restart the API with the new embedder settings before
the next restart-free change: the configuration is still the old one until it is edited.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from retrieval.reindex import ReindexStatus
from serving.http.auth import require_role
from serving.http.errors import ApiError
from vraagbaak_core.settings import PROJECT_ROOT, EmbedderSettings
from vraagbaak_core.types import Identity

log = logging.getLogger(__name__)


class ReindexRequest(BaseModel):
    model_config = {"extra": "forbid"}

    embedder: EmbedderSettings
    batch: int = Field(default=64, ge=1, le=4096)


class ReindexJob:
    """One reindex at a time per process; its status is read by GET."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = "idle"  # idle | running | done | failed
        self.status = ReindexStatus()
        self.error = ""
        self.thread: threading.Thread | None = None
        self.started = time.monotonic()

    def view(self) -> dict[str, Any]:
        return {"state": self.state, "error": self.error, **asdict(self.status)}

    def start(self, comps: Any, body: ReindexRequest) -> None:
        with self.lock:
            if self.state == "running":
                raise ApiError(409, "a reindex is already running", "conflict_error", "reindex_running")
            self.state, self.error, self.status = "running", "", ReindexStatus(embedder=body.embedder.model)
        self.thread = threading.Thread(target=self._run, args=(comps, body), name="reindex", daemon=True)
        self.thread.start()

    def retry_after(self) -> int:
        """Seconds until writes may succeed again: the rest of the run at its pace so far (5 to 600)."""
        s, elapsed = self.status, time.monotonic() - self.started
        if s.total and s.copied and elapsed > 0:
            left = max(0, s.total - s.copied - s.already) / (s.copied / elapsed)
            return int(min(600, max(5, left + 5)))
        return 30

    def _run(self, comps: Any, body: ReindexRequest) -> None:
        from retrieval.embedders import build_embedder
        from retrieval.reindex import drop_old_collections, reindex, switch_and_open

        def progress(s: ReindexStatus) -> None:
            self.status = s

        try:
            embedder = build_embedder(body.embedder, PROJECT_ROOT)  # before the pause: loading takes a while
            self.started = time.monotonic()
            ingestor = comps.ingestor
            pause = ingestor.writes_paused(self.retry_after) if ingestor is not None else contextlib.nullcontext()
            with pause:  # no write lands in the old collection from here on
                status = reindex(comps.store, embedder, batch=body.batch, progress=progress, switch=False)
                if status.built:
                    old = comps.store
                    new, target = switch_and_open(old, embedder)
                    comps.switch_index(embedder, new)  # search, ingest, erase and count: the new collection
                    _at_switch(comps)
                    target.retire(old)
                    status.switched = True
                    status.dropped = drop_old_collections(new, keep=target.name)
                    status.message = f"switched {status.source} -> {status.target}; the API serves it now"
            self.status, self.state = status, "done"
            log.info("reindex done: %s", status.message)
        except Exception as err:
            log.exception("reindex failed")
            self.error, self.state = f"{type(err).__name__}: {err}", "failed"


def _at_switch(comps: Any) -> None:
    """Test hook: called right after the API switched collections, with writes still paused."""


router = APIRouter()
_JOBS: dict[int, ReindexJob] = {}


def _job(request: Request) -> ReindexJob:
    comps = request.app.state.components
    return _JOBS.setdefault(id(comps), ReindexJob())


@router.post("/api/admin/reindex", status_code=202)
def start_reindex(
    body: ReindexRequest, request: Request, identity: Annotated[Identity, Depends(require_role("admin"))]
) -> dict[str, Any]:
    """Start re-embedding every stored chunk with ``embedder`` (the settings section) in the background."""
    job = _job(request)
    job.start(request.app.state.components, body)
    log.info("reindex to %s started by %s", body.embedder.model, identity.user_id)
    return job.view()


@router.get("/api/admin/reindex")
def reindex_status(
    request: Request, identity: Annotated[Identity, Depends(require_role("admin"))]
) -> dict[str, Any]:
    return _job(request).view()
