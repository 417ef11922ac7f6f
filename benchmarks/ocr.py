"""OCR quality and speed on clean renders of known Dutch text (issue 13 item 4).

Renders each page of tests/fixtures/scans.PAGES_NL with reportlab, rasterises it with pdftoppm at
200 and 300 dpi, wraps it in a PDF page without a text layer and reads it back through the real
PDF loader (pdftoppm + Tesseract, ingest.ocr defaults: nld+eng). Prints the character error rate
(Levenshtein distance / reference length, whitespace normalised) and pages/s per dpi.
Goal: CER <= 2% at 300 dpi.

    .venv/bin/python benchmarks/ocr.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.scans import PAGES_NL, image_pdf, scan_png  # noqa: E402

from ingest.loaders.pdf import PdfLoader  # noqa: E402
from ingest.ocr import Ocr, OcrConfig, limit_threads  # noqa: E402


def _norm(s: str) -> str:
    return " ".join(s.split())


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2, help="times the page set is read per dpi")
    args = ap.parse_args()
    limit_threads()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dpi in (200, 300):
            pngs = [scan_png(t, dpi, Path(tmp) / f"p{dpi}_{i}.png") for i, t in enumerate(PAGES_NL)]
            pdf = image_pdf(Path(tmp) / f"scan{dpi}.pdf", list(pngs))
            loader = PdfLoader(ocr=Ocr(OcrConfig(dpi=dpi)))
            data = pdf.read_bytes()
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                doc = loader.load(data, "scan.pdf")
            seconds = time.perf_counter() - t0
            by_page = {b.page: b.text for b in doc.blocks}
            errors = sum(levenshtein(_norm(by_page.get(i + 1, "")), _norm(t)) for i, t in enumerate(PAGES_NL))
            chars = sum(len(_norm(t)) for t in PAGES_NL)
            rows.append((dpi, len(PAGES_NL) * args.repeat, errors / chars, len(PAGES_NL) * args.repeat / seconds))
    print("| dpi | pages | CER | pages/s |")
    print("|---|---|---|---|")
    for dpi, pages, cer, pps in rows:
        print(f"| {dpi} | {pages} | {cer:.2%} | {pps:.2f} |")
    cer300 = next(r[2] for r in rows if r[0] == 300)
    print(f"goal CER <= 2% at 300 dpi: {'met' if cer300 <= 0.02 else 'NOT met'} ({cer300:.2%})")


if __name__ == "__main__":
    main()
