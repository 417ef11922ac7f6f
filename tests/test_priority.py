"""Blocking work runs nicer than the event loop (serving/http/priority.py, issue 11 item 21)."""

from __future__ import annotations

import asyncio
import threading

import anyio

from serving.http.priority import current_nice, lower_other_threads, lowered
from vraagbaak_core.settings import Settings


def test_a_worker_thread_lowers_itself_and_leaves_the_loop_thread_alone() -> None:
    base = current_nice()
    seen: list[int] = []

    async def main() -> tuple[int, int]:
        worker = await anyio.to_thread.run_sync(lowered, base + 5, current_nice)
        again = await anyio.to_thread.run_sync(lowered, base + 5, current_nice)  # once per thread
        return worker, again

    worker, again = asyncio.run(main())
    assert worker == again == base + 5
    assert current_nice() == base  # the calling (event loop) thread keeps its priority
    # threads a lowered thread starts inherit its nice value (a model's thread pool, a parser)
    t = threading.Thread(target=lambda: lowered(base + 3, lambda: seen.append(_child_nice())))
    t.start()
    t.join()
    assert seen == [base + 3]
    assert Settings().server.worker_nice == 10


def _child_nice() -> int:
    out: list[int] = []
    t = threading.Thread(target=lambda: out.append(current_nice()))
    t.start()
    t.join()
    return out[0]


def test_start_up_lowers_native_threads_only() -> None:
    base = current_nice()
    ready, done = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: (ready.set(), done.wait(10)))
    t.start()
    ready.wait(5)
    try:
        lower_other_threads(base + 4)
        assert current_nice() == base
        assert t.native_id is not None
        import os

        assert os.getpriority(os.PRIO_PROCESS, t.native_id) == base  # a Python thread: left alone
    finally:
        done.set()
        t.join()


def test_the_apps_executor_threads_run_nicer_than_its_loop(tmp_path: object) -> None:
    from fastapi.testclient import TestClient
    from support import make_settings

    from serving.app import create_app

    settings = make_settings(tmp_path)  # type: ignore[arg-type]
    app = create_app(settings)

    @app.get("/_nice")
    async def _nice() -> dict[str, int]:
        return {"loop": current_nice(), "executor": await asyncio.to_thread(current_nice)}

    with TestClient(app, base_url="http://127.0.0.1") as client:
        got = client.get("/_nice").json()
    assert got["executor"] >= settings.server.worker_nice > got["loop"]
