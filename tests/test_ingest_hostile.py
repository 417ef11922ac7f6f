"""Hostile and broken files: each fails alone with a one-line reason; the batch goes on.

Covers every real PDF in ../shared/data/pdfs (encrypted, corrupt, scanned ...), zero-byte
and oversized files, decompression bombs (DOCX and PDF), a 3000-page PDF, binary junk named
.txt, odd file names, and the worker's own limits: a memory bomb that gets past the ZIP guard
hits RLIMIT_AS, a parse that runs too long is killed, a worker that is killed is replaced.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.make_docs import (
    SECTIONS_NL,
    make_docx_bomb,
    make_many_pages_pdf,
    make_markdown,
    make_pdf,
    make_pdf_flate_bomb,
)
from ingest_support import make_ingestor

from ingest.loaders.limits import LoaderLimits
from ingest.manifest import Labels
from ingest.pipeline import Ingestor
from ingest.worker import ParserPool, ParseTask, WorkerConfig

PDFS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pdfs"
ZORG = Labels(groups=("zorg",))


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    # about parsing hostile files, not answering: no unit vectors (they double the embedding work)
    ingestor = make_ingestor(tmp_path_factory.mktemp("hostile"), max_file_mb=1.0, max_pages=500, unit_vectors=False)
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def _one_line(reason: str) -> bool:
    return bool(reason) and "\n" not in reason and len(reason) < 400


@pytest.mark.skipif(not PDFS.is_dir(), reason="../shared/data/pdfs not present")
def test_every_shared_pdf_is_ingested_or_rejected_with_a_reason(ing: Ingestor) -> None:
    files = sorted(p for p in PDFS.rglob("*") if p.is_file())
    report = ing.ingest_paths([PDFS], ZORG)
    assert len(report.results) == len(files)
    by_source = {r.source: r for r in report.results}
    for r in report.failed:
        assert _one_line(r.reason), r
    for r in report.added:
        assert r.chunks > 0 and ing.store.count(r.doc_id) == r.chunks
    reasons = {k: v.reason for k, v in by_source.items() if v.status == "failed"}
    assert "corrupt or unreadable PDF" in reasons["pdf-parse/03-invalid.pdf"]
    assert "password" in reasons["pypdf/libreoffice-writer-password.pdf"]
    assert "password" in reasons["pypdf/crazyones-encrypted-256.pdf"]
    assert "file too large" in reasons["pdf-parse/02-valid.pdf"]  # 3.4 MB > the 1 MB limit here
    assert by_source["pdf-parse/04-valid.pdf"].status == "added"
    assert by_source["pypdf/test Orient.pdf"].status == "added"  # a space in the name
    assert len(report.added) >= 40


def test_bombs_junk_and_odd_names_fail_alone(ing: Ingestor, tmp_path: Path) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    (root / "leeg.pdf").write_bytes(b"")
    (root / "junk.txt").write_bytes(os.urandom(50_000))
    (root / "groot.txt").write_bytes(b"a " * 600_000)  # 1.2 MB > 1 MB
    make_docx_bomb(root / "bom.docx", 256)
    make_pdf_flate_bomb(root / "bom.pdf", 200)
    make_many_pages_pdf(root / "duizend pagina's.pdf", 3000)
    whole = make_pdf(root / "afgebroken.pdf", ["tekst"]).read_bytes()
    (root / "afgebroken.pdf").write_bytes(whole[:300])  # truncated
    make_markdown(root / "één — protocol ✓.md", "Protocol", SECTIONS_NL)
    make_pdf(root / "goed bestand.pdf", ["Handhygiëne voor iedereen."])
    report = ing.ingest_paths([root], ZORG)
    reasons = {r.source: r.reason for r in report.failed}
    assert {r.source for r in report.added} == {"één — protocol ✓.md", "goed bestand.pdf"}
    assert reasons["leeg.pdf"] == "empty file (0 bytes)"
    assert "binary data" in reasons["junk.txt"]
    assert "file too large" in reasons["groot.txt"]
    assert "decompression bomb" in reasons["bom.docx"]
    assert "decompression bomb" in reasons["bom.pdf"]
    assert "too many pages: 3000" in reasons["duizend pagina's.pdf"]
    assert "PDF" in reasons["afgebroken.pdf"]
    assert all(_one_line(r) for r in reasons.values())
    assert not report.ok


def _pool_run(config: WorkerConfig, tasks: list[ParseTask], timeout: float = 120) -> dict[int, str]:
    out: dict[int, str] = {}
    with ParserPool(config, workers=1) as pool:
        for t in tasks:
            pool.submit(t)
        deadline = time.monotonic() + timeout
        while len(out) < len(tasks) and time.monotonic() < deadline:
            res = pool.get(timeout=1)
            if res is not None:
                out[res.key] = res.reason if res.status == "failed" else res.status
        assert pool.restarts >= 1
    return out


def test_memory_limit_stops_a_bomb_the_zip_guard_lets_through(tmp_path: Path) -> None:
    bomb = make_docx_bomb(tmp_path / "bom.docx", 400).read_bytes()
    config = WorkerConfig(limits=LoaderLimits(max_uncompressed_mb=100_000, max_compression_ratio=1e9),
                          memory_mb=600, timeout_s=120)
    ok = make_pdf(tmp_path / "ok.pdf", ["Na de bom gaat het verder."]).read_bytes()
    out = _pool_run(config, [ParseTask(1, "bom.docx", data=bomb), ParseTask(2, "ok.pdf", data=ok)])
    assert "memory limit" in out[1] and out[2] == "parsed"


def test_time_limit_kills_a_slow_parse_and_the_next_file_goes_on(tmp_path: Path) -> None:
    # 10,000 blank pages take ~1.5 s to parse on a quiet machine (3,000 took 0.3 s: too close)
    many = make_many_pages_pdf(tmp_path / "veel.pdf", 10_000).read_bytes()
    config = WorkerConfig(limits=LoaderLimits(max_pages=100_000), timeout_s=0.3)
    out = _pool_run(config, [ParseTask(1, "veel.pdf", data=many), ParseTask(2, "kort.txt", data=b"kort")])
    assert "longer than 0.3 s" in out[1] and out[2] == "parsed"


def test_a_killed_worker_fails_its_file_and_is_replaced(tmp_path: Path) -> None:
    many = make_many_pages_pdf(tmp_path / "veel.pdf", 3000).read_bytes()
    config = WorkerConfig(limits=LoaderLimits(max_pages=100_000), timeout_s=60)
    with ParserPool(config, workers=1) as pool:
        pool.submit(ParseTask(1, "veel.pdf", data=many * 1))
        deadline = time.monotonic() + 60
        while not any(s.task is not None for s in pool._slots) and time.monotonic() < deadline:
            time.sleep(0.01)
        victim = pool._slots[0].proc.pid
        assert victim is not None
        threading.Timer(0.01, os.kill, (victim, signal.SIGKILL)).start()
        res = pool.get(timeout=60)
        assert res is not None and res.status == "failed" and "died (signal 9)" in res.reason
        pool.submit(ParseTask(2, "kort.txt", data=b"nog een bestand"))
        res2 = pool.get(timeout=60)
        assert res2 is not None and res2.status == "parsed" and pool.restarts == 1


def test_idle_workers_stop_and_start_again_with_the_next_file() -> None:
    """A parser worker holds about 1 GiB (the guard's tables): after ``idle_s`` without work it stops,
    and the next file starts one again. Before, every Ingestor left open kept its worker for the life
    of the process (16 of them, 17 GiB, during make test: the browser tests were killed for memory)."""
    config = WorkerConfig(limits=LoaderLimits(), timeout_s=60)
    with ParserPool(config, workers=1, idle_s=1.0) as pool:
        pool.submit(ParseTask(1, "een.txt", data=b"eerste bestand"))
        res = pool.get(timeout=60)
        assert res is not None and res.status == "parsed"
        proc = pool._slots[0].proc
        deadline = time.monotonic() + 30
        while proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not proc.is_alive() and pool._slots == []
        pool.submit(ParseTask(2, "twee.txt", data=b"tweede bestand"))
        res = pool.get(timeout=60)
        assert res is not None and res.status == "parsed" and pool.restarts == 0
