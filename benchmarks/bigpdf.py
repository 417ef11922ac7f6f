"""Large files stream: a generated PDF of thousands of pages through the embedded default.

    nice -n 5 .venv/bin/python benchmarks/bigpdf.py [--pages 5000] [--words 300] [--page-batch N]

Writes a deterministic A4 PDF (``benchmarks/bigpdf_text.py``, reportlab: one section of realistic
Dutch protocol text per page, about ``--words`` words, a chapter outline every 25 pages), then
ingests it into a fresh Qdrant Edge shard with ``configs/default.yaml`` as it is (the default
embedder, the patient-data guard with deduce, OCR on; data paths in a temporary folder) through
``Ingestor.from_settings`` and ``ingest_paths``, the path ``vraagbaak ingest`` takes.

Prints pages, chunks, seconds, pages/s and chunks/s, and the peak resident memory of the whole
process tree: this process plus its parser worker, summed, sampled every 0.1 s with psutil; next to
it the main process's own peak (``ru_maxrss``) and the worker's (sampled).
The tree's RSS at each quarter of the pages shows whether memory stays flat.
Goal (issue 20): a 5,000-page PDF ingests with peak RSS under 2 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.bigpdf_text import write_pdf  # noqa: E402


class TreeRss:
    """Samples the summed RSS of this process and all its descendants in a thread."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.every_s = every_s
        self.peak = 0
        self.peak_workers = 0
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> tuple[int, int]:
        total = self._me.memory_info().rss
        workers = 0
        for child in self._me.children(recursive=True):
            try:
                workers += child.memory_info().rss
            except psutil.Error:
                pass
        return total + workers, workers

    def _run(self) -> None:
        while not self._stop.is_set():
            total, workers = self.now()
            self.peak = max(self.peak, total)
            self.peak_workers = max(self.peak_workers, workers)
            self._stop.wait(self.every_s)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--words", type=int, default=300, help="words of text per page")
    ap.add_argument("--page-batch", type=int, default=None, help="ingest.page_batch (default: the settings')")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None, help="write the PDF here (kept) instead of a temp folder")
    ap.add_argument("--parse-only", action="store_true",
                    help="only the parser worker (the settings' own, guard included): parts read, nothing embedded")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="vb-bigpdf-") as tmp:
        work = Path(tmp)
        docs = work / "docs"
        docs.mkdir()
        pdf = docs / f"handboek-{args.pages}.pdf"
        t0 = time.perf_counter()
        write_pdf(str(pdf), args.pages, seed=args.seed, words=args.words)
        if args.keep is not None:
            args.keep.write_bytes(pdf.read_bytes())
        print(f"generated {pdf.name}: {args.pages} pages, {pdf.stat().st_size / 2**20:.1f} MiB "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)

        os.environ["VRAAGBAAK_DATA_DIR"] = str(work / "data")
        os.environ["VRAAGBAAK_STORE__PATH"] = str(work / "data" / "edge")
        os.environ["VRAAGBAAK_INGEST__STATE_PATH"] = str(work / "data" / "state.sqlite")
        os.environ["VRAAGBAAK_AUDIT__PATH"] = str(work / "data" / "audit.jsonl")
        os.environ["VRAAGBAAK_INGEST__MAX_FILE_MB"] = str(max(50, pdf.stat().st_size // 2**20 + 10))
        if args.page_batch is not None:
            os.environ["VRAAGBAAK_INGEST__PAGE_BATCH"] = str(args.page_batch)

        from ingest.manifest import Labels
        from ingest.pipeline import Ingestor
        from ingest.report import ProgressUpdate
        from vraagbaak_core.settings import load_settings

        settings = load_settings()
        ing = Ingestor.from_settings(settings)
        if args.parse_only:
            _parse_only(ing, pdf, args.pages)
            return
        marks: dict[int, tuple[float, int, int]] = {}  # quarter -> (seconds, page, tree RSS)
        with TreeRss() as rss:
            t0 = time.perf_counter()

            def progress(u: ProgressUpdate) -> None:
                if u.pages and u.page:
                    q = 4 * u.page // u.pages
                    if q not in marks:
                        marks[q] = (time.perf_counter() - t0, u.page, rss.now()[0])
                        print(f"  page {u.page}/{u.pages}: {marks[q][0]:.0f} s, tree RSS {marks[q][2] / 2**20:.0f} MiB",
                              flush=True)

            report = ing.ingest_paths([docs], Labels(groups=("bench",)), progress=progress)
            seconds = time.perf_counter() - t0
            chunks = ing.store.count()
            ing.close()
            ing.store.close()
        if not report.ok:
            raise SystemExit(f"ingest failed: {[(r.source, r.reason) for r in report.failed]}")
        main_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        child_peak = rss.peak_workers
        mib = 2**20
        print()
        print("| pages | words/page | page_batch | chunks | seconds | pages/s | chunks/s | embed s | "
              "peak tree RSS | main peak | worker peak |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print(
            f"| {args.pages} | {args.words} | {settings.ingest.page_batch} | {chunks} | {seconds:.0f} | "
            f"{args.pages / seconds:.2f} | {chunks / seconds:.2f} | {report.embed_seconds:.0f} | "
            f"{rss.peak / mib:.0f} MiB | {main_peak / mib:.0f} MiB | {child_peak / mib:.0f} MiB |"
        )
        flat = ", ".join(f"p{page}: {tree / mib:.0f} MiB" for _, (_, page, tree) in sorted(marks.items()))
        print(f"tree RSS as the pages go by: {flat}")
        print(f"goal: peak tree RSS < 2048 MiB: {'met' if rss.peak < 2 * 2**30 else 'NOT met'}")


def _parse_only(ing: object, pdf: Path, pages: int) -> None:
    from ingest.pipeline import Ingestor
    from ingest.worker import ParseTask

    assert isinstance(ing, Ingestor)
    pool = ing._pool_get()  # the worker exactly as an ingest builds it from the settings
    with TreeRss() as rss:
        t0 = time.perf_counter()
        pool.submit(ParseTask(0, pdf.name, str(pdf)))
        parts = blocks = 0
        while True:
            res = pool.get(timeout=3600)
            if res is None:
                raise SystemExit("no parse result within an hour")
            parts += 1
            blocks += len(res.blocks) + len(res.drafts or [])
            if res.final:
                break
        seconds = time.perf_counter() - t0
        ing.close()
    if res.status != "parsed":
        raise SystemExit(f"parse failed: {res.reason}")
    mib = 2**20
    child_peak = rss.peak_workers
    print(f"parse only: {pages} pages in {parts} parts ({blocks} blocks) in {seconds:.0f} s = "
          f"{pages / seconds:.1f} pages/s; peak tree RSS {rss.peak / mib:.0f} MiB, "
          f"worker peak {child_peak / mib:.0f} MiB")


if __name__ == "__main__":
    main()
