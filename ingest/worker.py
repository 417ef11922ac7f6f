"""Parsing and chunking in worker processes with memory and time limits.

A decompression bomb, a pathological PDF or a parser bug must fail one file, never the run.
Each worker is a ``spawn``-ed process that sets ``RLIMIT_AS`` (``ingest.worker_memory_mb``)
on itself, reads, hashes, parses and chunks files, and answers with a :class:`ParseResult`.
A dispatcher thread in the parent hands out tasks, enforces ``ingest.worker_timeout_s`` per
file (kills the worker), notices a worker that died (a signal, the OOM killer) and starts a
new one; results go into a bounded queue, so parsing runs ahead of embedding but not unboundedly.

Long documents stream: a loader that reads pages (``PagedLoader``: PDF) hands the document over in
parts of ``ingest.page_batch`` pages, and the worker sends each part's chunks (``final=False``) as
soon as it may, then the last part as the final result; the pipe and the bounded queue hold the
worker back while the parent embeds, so memory stays flat however long the file. After each part
the worker sends a :class:`ParseProgress`, which renews the time limit: for a streamed document
``ingest.worker_timeout_s`` bounds each part of pages (and each piece the patient-data guard reads),
not the whole file. Nothing of a document leaves the worker before the patient-data guard has
read all of it (the parts are held until then). A final result may still say ``failed`` after parts
were sent (a later page is broken, the worker died or timed out); the parent then rolls the
document back (``ingest.pipeline``).

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one hung task, and a worker
that dies breaks the whole pool and every pending future with it.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ingest.detect import detect_format
from ingest.doccontrol import properties_from
from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits
from ingest.loaders.parts import join_parts
from ingest.ocr import OcrConfig
from ingest.patientdata import GuardConfig, PatientDataGuard
from vraagbaak_core.ports import PagedLoader
from vraagbaak_core.types import ParsedDocument

if TYPE_CHECKING:  # a worker that does not chunk never imports the chunker (langchain-core)
    from ingest.chunking import ChunkDraft

log = logging.getLogger(__name__)

_RECYCLE_AFTER = 2000  # tasks per worker process before a fresh one (bounds fragmentation)


@dataclass(frozen=True)
class WorkerConfig:
    limits: LoaderLimits = field(default_factory=LoaderLimits)
    memory_mb: int = 1536
    timeout_s: float = 120.0
    max_bytes: int = 50 * 1024 * 1024
    tokenizer_dir: str | None = None  # a model directory with tokenizer.json; None: no chunking in workers
    max_tokens: int = 256
    chunk_tokens: int | None = None
    chunk_overlap: int = 32
    audit_path: str | None = None  # where a refused egress attempt of a worker is recorded
    audit_source_id: str = "vraagbaak"
    guard: GuardConfig | None = None  # the patient-data guard (ingest.patientdata); None: off
    ocr: OcrConfig | None = None  # Tesseract for scans and images (ingest.ocr); None: off
    page_batch: int = 32  # pages per streamed part of a long document (ingest.page_batch); 0: whole files


@dataclass(frozen=True)
class ParseTask:
    key: int
    name: str
    path: str | None = None
    data: bytes | None = None
    known_sha256: str | None = None  # answer "unchanged" without parsing when the content matches
    guard: bool = True  # False: the source set allows patient data (patient_data: allowed)
    released_sha256: tuple[str, ...] = ()  # contents a privacy officer released from quarantine


@dataclass
class ParseResult:
    key: int
    status: Literal["parsed", "unchanged", "failed", "quarantined"]
    reason: str = ""
    sha256: str = ""
    size: int = 0
    title: str = ""
    format: str = ""
    language: str = ""
    text_sample: str = ""
    blocks: list[Any] = field(default_factory=list)  # Block, when chunking happens in the parent
    drafts: list[ChunkDraft] | None = None
    seconds: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)  # document-control fields the file states
    findings: dict[str, int] = field(default_factory=dict)  # patient-data counts per kind (never values)
    ocr_pages: int = 0  # pages read with OCR
    notes: list[str] = field(default_factory=list)  # OCR pages read, skipped or failed, for the report
    pages: int = 0  # the document's page count (0: the format has none)
    final: bool = True  # False: one part of a streamed document, more follows (``status`` is "parsed")


@dataclass(frozen=True)
class ParseProgress:
    """A streaming worker's sign of life after each part of pages; renews the file's time limit."""

    key: int


# how much text a streamed document's language is detected on (the start of the whole document)
_LANGUAGE_CHARS = 20000


# ---------------------------------------------------------------- the worker process


class _WorkerState:
    def __init__(self, config: WorkerConfig) -> None:
        from ingest.chunking import Chunker, FileTokenCounter
        from ingest.loaders import build_loaders
        from retrieval.analysis import detect_language

        self.detect_language = detect_language

        self.config = config
        from ingest.ocr import Ocr, limit_threads

        limit_threads()
        self.ocr = Ocr(config.ocr or OcrConfig(enabled=False))
        self.loaders = build_loaders(config.limits, self.ocr)
        self.guard: PatientDataGuard | None = None
        self.guard_mb = 0  # address space the guard's lookup tables take (added to the memory limit)
        if config.guard is not None:
            before = _address_space_mb()
            self.guard = PatientDataGuard(config.guard)
            self.guard_mb = max(0, _address_space_mb() - before)
        self.chunker: Chunker | None = None
        if config.tokenizer_dir is not None:
            counter = FileTokenCounter(Path(config.tokenizer_dir), config.max_tokens)
            self.chunker = Chunker(counter, config.chunk_tokens, config.chunk_overlap)

    def run(self, task: ParseTask, send: Callable[[object], None] | None = None) -> ParseResult:
        """Parse one file; the final result is returned, the parts before it go to ``send``."""
        t0 = time.perf_counter()
        if task.data is not None:
            data = task.data
        else:
            assert task.path is not None
            # O_NOFOLLOW: a file swapped for a symbolic link after discovery is refused, not followed
            fd = os.open(task.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(self.config.max_bytes + 1)
        size = len(data)
        if size > self.config.max_bytes:
            limit_mb = self.config.max_bytes / 2**20
            reason = f"file too large (limit {limit_mb:.0f} MB, ingest.max_file_mb)"
            return ParseResult(task.key, "failed", reason)
        sha = hashlib.sha256(data).hexdigest()
        if task.known_sha256 == sha:
            return ParseResult(task.key, "unchanged", sha256=sha, size=size)
        # OCR stops with a clear reason before the parent's time limit would kill the worker
        budget = max(1.0, self.config.timeout_s - 2.0)
        self.ocr.start_file(max(1.0, self.config.timeout_s - (time.perf_counter() - t0) - 2.0))
        try:
            fmt = detect_format(data, task.name)
            loader = self.loaders[fmt]
            parts: Iterable[ParsedDocument]
            paged = send is not None and self.config.page_batch > 0 and isinstance(loader, PagedLoader)
            if paged:
                assert isinstance(loader, PagedLoader)
                parts = loader.load_parts(data, task.name, self.config.page_batch)
            else:
                parts = [loader.load(data, task.name)]
            # only a file read in parts of pages shows progress (and renews its time limit) as it goes
            out = send or _nowhere
            result = self._stream(task, parts, sha, size, budget, out, out if paged else _nowhere)
        except LoadError as err:
            return ParseResult(task.key, "failed", str(err), sha256=sha, size=size)
        result.seconds = time.perf_counter() - t0
        return result

    def _stream(
        self, task: ParseTask, parts: Iterable[ParsedDocument], sha: str, size: int, budget: float,
        send: Callable[[object], None], tick: Callable[[object], None],
    ) -> ParseResult:
        guarded = self.guard is not None and task.guard and sha not in task.released_sha256
        held: list[ParsedDocument] = []  # parts read but not sent
        chars = 0
        language: str | None = None
        next_index = 0
        ocr_pages = 0
        notes: list[str] = []

        def message(part: ParsedDocument, final: bool) -> ParseResult:
            nonlocal next_index
            assert language is not None
            res = ParseResult(
                task.key, "parsed", sha256=sha, size=size, title=part.title, format=part.format, language=language,
                properties=properties_from(part.properties), pages=part.pages or 0, final=final,
            )
            if self.chunker is not None:
                res.drafts = self.chunker.chunk(part, next_index)
                next_index += len(res.drafts)
            else:
                res.blocks = part.blocks
            return res

        def send_held(keep_last: bool) -> None:
            while len(held) > (1 if keep_last else 0):
                res = message(held.pop(0), final=False)
                if res.drafts or res.blocks:
                    send(res)

        for part in parts:
            held.append(part)
            ocr_pages += part.ocr_pages
            notes.extend(part.notes)
            chars += len(part.text) + 2
            tick(ParseProgress(task.key))
            self.ocr.renew(budget)
            if guarded or (language is None and chars < _LANGUAGE_CHARS):
                continue  # the guard reads the whole document first; the language needs its start
            if language is None:
                language = self.detect_language(join_parts(held).text[:_LANGUAGE_CHARS])
            send_held(keep_last=True)  # the newest part may be the last: it goes as the final result
        if not held:
            raise LoadError("the document has no parts")
        if guarded:
            assert self.guard is not None
            doc = join_parts(held)
            found = self.guard.scan(doc.text, tick=lambda: tick(ParseProgress(task.key)))
            if found.over(self.guard.config.threshold):
                return ParseResult(
                    task.key, "quarantined", f"patient data found ({found.summary()}); quarantined, not indexed",
                    sha256=sha, size=size, title=doc.title, format=doc.format, findings=dict(found.counts),
                )
        if language is None:  # nothing sent yet: ``held`` starts at the document's start
            language = self.detect_language(join_parts(held).text[:_LANGUAGE_CHARS])
        send_held(keep_last=True)
        result = message(held.pop(), final=True)
        result.ocr_pages, result.notes = ocr_pages, notes
        if self.chunker is not None and next_index == 0:
            return ParseResult(task.key, "failed", "no text to index", sha256=sha, size=size)
        return result


def _nowhere(message: object) -> None:
    """``send`` for a caller that takes only final results (its documents are never split)."""


def _address_space_mb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _set_memory_limit(memory_mb: int) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError) as err:  # non-POSIX: time limits still apply
        log.warning("could not set the parser memory limit: %s", err)


def _guard_worker(config: WorkerConfig) -> None:
    """Workers parse bytes and need no network at all: loopback only, before any other import."""
    from vraagbaak_core.egress import Allowlist, Refusal, force_offline_env, install_guard

    force_offline_env()
    on_refused = None
    if config.audit_path is not None:
        from vraagbaak_core.audit import AuditLog

        log = AuditLog(Path(config.audit_path), source_id=config.audit_source_id)

        def on_refused(refusal: Refusal) -> None:
            log.egress_refused(refusal.destination, refusal.message, kind=refusal.kind)

    install_guard(Allowlist.build([], ()), on_refused)


def _worker_main(conn: Connection, config: WorkerConfig) -> None:
    _guard_worker(config)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["OMP_NUM_THREADS"] = "1"
    state = _WorkerState(config)  # imports before the limit: they are not the file's fault
    _set_memory_limit(config.memory_mb + state.guard_mb)
    conn.send("ready")  # the time limit starts with the task, not with the imports
    done = 0
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        restart = False
        try:
            result = state.run(task, conn.send)
        except MemoryError:
            result = ParseResult(
                task.key, "failed",
                f"parser exceeded the memory limit ({config.memory_mb} MB, ingest.worker_memory_mb): "
                "a decompression bomb or an oversized document",
            )
            restart = True
        except RecursionError:
            result = ParseResult(task.key, "failed", "document nested too deeply to parse")
        except OSError as err:
            result = ParseResult(task.key, "failed", f"cannot read file: {err.strerror or err}")
        except Exception as err:  # noqa: BLE001 - a parser bug must fail this one file, never the run
            first = str(err).splitlines()[0][:200] if str(err) else ""
            reason = f"parser error: {type(err).__name__}: {first}".rstrip(": ")
            result = ParseResult(task.key, "failed", reason)
        try:
            conn.send(result)
        except MemoryError:
            conn.send(ParseResult(task.key, "failed", "parsed document too large to hand over"))
            restart = True
        done += 1
        if restart or done >= _RECYCLE_AFTER:
            return


# ---------------------------------------------------------------- the parent side


@dataclass
class _Slot:
    proc: BaseProcess
    conn: Connection
    task: ParseTask | None = None
    started: float = 0.0  # when the task began, or its last sign of progress (a part of pages)
    ready: bool = False
    streamed: bool = False  # parts of the current task were handed on: it cannot be sent again
    paged: bool = False  # the current task reads in parts of pages (its time limit is per part)


class ParserPool:
    """Worker processes fed by a dispatcher thread; ``get()`` returns results as they finish.

    A streamed document comes as parts (``final=False``) before its final result; ``get()`` returns
    each in order. Only a final result ends a task.
    """

    def __init__(self, config: WorkerConfig, workers: int = 1, max_ready: int = 64, idle_s: float = 60.0) -> None:
        self.config = config
        self.idle_s = idle_s  # workers without a task this long are stopped (respawned on demand)
        self._idle_since: float | None = None
        self.n_workers = max(1, workers)
        self._ctx = multiprocessing.get_context("spawn")
        self._tasks: deque[ParseTask] = deque()
        self._results: queue.Queue[ParseResult] = queue.Queue(maxsize=max(1, max_ready))
        self._slots: list[_Slot] = []
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self._start_failures = 0

    # -- public

    def submit(self, task: ParseTask) -> None:
        with self._cv:
            self._tasks.append(task)
            self._cv.notify()
        self._ensure_thread()

    def get(self, timeout: float | None = None) -> ParseResult | None:
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for slot in self._slots:
            self._stop_slot(slot, graceful=True)
        self._slots = []

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatcher

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="ingest-dispatch", daemon=True)
            self._thread.start()

    def _spawn(self) -> _Slot:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, args=(child, self.config), name="vraagbaak-parser",
                                 daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def _stop_slot(self, slot: _Slot, graceful: bool = False) -> None:
        if graceful and slot.proc.is_alive():
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
            slot.proc.join(timeout=5)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join(timeout=5)
        slot.conn.close()

    def _replace(self, slot: _Slot) -> None:
        self._stop_slot(slot)
        self._slots.remove(slot)
        self.restarts += 1

    def _put(self, result: ParseResult) -> None:
        while True:
            try:
                self._results.put(result, timeout=0.5)
                return
            except queue.Full:
                if self._stop:
                    return

    def _dispatch(self) -> None:
        with self._cv:
            while len(self._slots) < self.n_workers and len(self._slots) < len(self._tasks) + self._busy():
                self._slots.append(self._spawn())
            for slot in self._slots:
                if slot.ready and slot.task is None and self._tasks:
                    task = self._tasks.popleft()
                    try:
                        slot.conn.send(task)
                    except (OSError, ValueError):
                        self._tasks.appendleft(task)
                        continue
                    slot.task, slot.started = task, time.monotonic()

    def _fail_all(self, reason: str) -> None:
        with self._cv:
            tasks = list(self._tasks)
            self._tasks.clear()
        for task in tasks:
            self._put(ParseResult(task.key, "failed", reason))
        self._start_failures = 0

    def _busy(self) -> int:
        return sum(1 for s in self._slots if s.task is not None)

    def _loop(self) -> None:
        while True:
            with self._cv:
                if self._stop:
                    return
                idle = not self._tasks and not self._busy()
                if idle:
                    self._cv.wait(timeout=0.5)
            if idle:
                self._stop_idle()
                continue
            self._idle_since = None
            self._dispatch()
            slots = list(self._slots)
            busy = [s for s in slots if s.task is not None]
            wait_s = 0.5
            if busy:
                next_deadline = min(s.started + self.config.timeout_s for s in busy)
                wait_s = max(0.0, min(0.5, next_deadline - time.monotonic()))
            handles: list[Any] = [s.conn for s in slots] + [s.proc.sentinel for s in slots]
            multiprocessing.connection.wait(handles, timeout=wait_s)
            for slot in slots:
                self._check(slot)

    def _stop_idle(self) -> None:
        """Stop the workers once no task came for ``idle_s`` (only this thread changes the slots)."""
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if not self._slots or now - self._idle_since < self.idle_s:
            return
        with self._cv:
            if self._tasks:
                return
            slots, self._slots = self._slots, []
        for slot in slots:
            self._stop_slot(slot, graceful=True)
        log.info("parser workers stopped after %.0f s without work", now - self._idle_since)

    def _check(self, slot: _Slot) -> None:
        task = slot.task
        if slot.conn.poll():
            try:
                msg: Any = slot.conn.recv()
            except (EOFError, OSError):
                msg = None
            if msg == "ready":
                slot.ready = True
                self._start_failures = 0
                return
            if isinstance(msg, ParseProgress):
                slot.started = time.monotonic()
                slot.paged = True
                return
            if isinstance(msg, ParseResult) and not msg.final:
                slot.started = time.monotonic()
                slot.streamed = True
                self._put(msg)
                return
            if isinstance(msg, ParseResult):
                slot.task = None
                slot.streamed = slot.paged = False
                self._put(msg)
                if msg.reason.startswith("parser exceeded the memory"):
                    slot.proc.join(timeout=5)
                    self._replace(slot)
                return
        if not slot.proc.is_alive():
            code = slot.proc.exitcode
            self._replace(slot)
            if not slot.ready:
                self._start_failures += 1
                if self._start_failures >= 3:
                    self._fail_all(f"parser worker cannot start (exit code {code}); see the log")
                return
            # it recycled itself: a task sent meanwhile goes again (never one whose parts went on)
            if task is None or (code == 0 and not slot.streamed):
                if task is not None:
                    with self._cv:
                        self._tasks.appendleft(task)
                return
            slot.task = None
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            log.warning("parser worker died on %s (%s)", task.name, how)
            self._put(ParseResult(
                task.key, "failed",
                f"parser process died ({how}); the file may be a bomb or trigger a parser crash",
            ))
            return
        if task is not None and time.monotonic() - slot.started > self.config.timeout_s:
            log.warning("parser worker timed out on %s", task.name)
            slot.task = None
            self._replace(slot)
            per = f" on one part of {self.config.page_batch} pages" if slot.paged else ""
            self._put(
                ParseResult(
                    task.key, "failed",
                    f"parsing took longer than {self.config.timeout_s:g} s{per} (ingest.worker_timeout_s)",
                )
            )
