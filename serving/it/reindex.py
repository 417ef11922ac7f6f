"""``/api/admin/reindex``: run ``retrieval.reindex`` inside the API process (role ``admin``).

On the embedded default the API holds the Qdrant Edge shard (one process at a time can open
it), so ``vraagbaak reindex --api URL`` asks the running API to do the work: a background
thread reads the shard the API already has open and writes the new one, while chat keeps
answering from the old collection with the old embedder. After the switch the API keeps
serving the old collection until it is restarted with the new embedder settings; the old
collection is dropped afterwards with ``vraagbaak reindex --drop-old``.
"""

from __future__ import annotations

import logging
import threading
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

    def view(self) -> dict[str, Any]:
        return {"state": self.state, "error": self.error, **asdict(self.status)}

    def start(self, comps: Any, body: ReindexRequest) -> None:
        with self.lock:
            if self.state == "running":
                raise ApiError(409, "a reindex is already running", "conflict_error", "reindex_running")
            self.state, self.error, self.status = "running", "", ReindexStatus(embedder=body.embedder.model)
        self.thread = threading.Thread(target=self._run, args=(comps, body), name="reindex", daemon=True)
        self.thread.start()

    def _run(self, comps: Any, body: ReindexRequest) -> None:
        from retrieval.embedders import build_embedder
        from retrieval.reindex import reindex

        def progress(s: ReindexStatus) -> None:
            self.status = s

        try:
            embedder = build_embedder(body.embedder, PROJECT_ROOT)
            self.status = reindex(comps.store, embedder, batch=body.batch, progress=progress)
            self.state = "done"
            log.info("reindex done: %s", self.status.message)
        except Exception as err:
            log.exception("reindex failed")
            self.error, self.state = f"{type(err).__name__}: {err}", "failed"


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
