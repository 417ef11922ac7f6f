"""OCR with Tesseract (through pytesseract) for PDF pages without a text layer and for images.

Why pytesseract and not ocrmypdf: we OCR page by page inside the sandboxed parser worker, so a
page keeps its exact number, one bad page fails alone, images need no PDF wrapper, and each page
is a short ``tesseract`` subprocess that inherits the worker's memory limit and gets its own time
limit. ocrmypdf rewrites the whole PDF in its own process pool, outside those limits.

PDF pages are rendered with poppler's ``pdftoppm`` (a subprocess too: a page that crashes the
renderer fails alone). Both tools come from Debian (``scripts/install-tesseract``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import LoadError


@dataclass(frozen=True)
class OcrConfig:
    enabled: bool = True
    languages: str = "nld+eng"
    dpi: int = 300
    page_timeout_s: float = 60.0


class PageError(Exception):
    """One page could not be OCRed; the rest of the document goes on."""


class Ocr:
    """Tesseract OCR, or the reason it is off (``reason``), decided once per worker."""

    def __init__(self, config: OcrConfig) -> None:
        self.config = config
        self.reason = unavailable_reason(config)
        self.deadline: float | None = None  # time.monotonic() by which the current file must be done
        self.pages = 0  # pages OCRed in the current file
        self.seconds = 0.0

    @property
    def available(self) -> bool:
        return self.reason is None

    def start_file(self, budget_s: float | None) -> None:
        self.deadline = None if budget_s is None else time.monotonic() + budget_s
        self.pages = 0
        self.seconds = 0.0

    def renew(self, budget_s: float) -> None:
        """A new time budget for the rest of the file (a parser that streams pages renews it per part)."""
        self.deadline = time.monotonic() + budget_s

    def _timeout(self) -> float:
        t = self.config.page_timeout_s
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left < 1.0:
                raise LoadError(
                    f"OCR did not finish within the parser time limit after {self.pages} page(s) "
                    "(raise ingest.worker_timeout_s for long scans)"
                )
            t = min(t, left)
        return t

    def image_text(self, image: Any) -> str:
        """Text of one page image (a PIL image or an image file path)."""
        import pytesseract

        t0 = time.perf_counter()
        timeout = self._timeout()
        try:
            text = pytesseract.image_to_string(image, lang=self.config.languages, timeout=timeout)
        except RuntimeError as err:  # pytesseract raises RuntimeError on its timeout
            raise PageError(f"OCR took longer than {timeout:.0f} s ({err})") from None
        except pytesseract.TesseractError as err:
            raise PageError(f"tesseract failed: {str(err.message or err)[:160]}") from None
        except (OSError, ValueError) as err:
            raise PageError(f"tesseract could not read the image: {str(err)[:160]}") from None
        self.pages += 1
        self.seconds += time.perf_counter() - t0
        return _clean(text)

    def pdf_page_text(self, src: Path, page: int) -> str:
        """Render 1-based ``page`` of the PDF file ``src`` with pdftoppm and OCR it."""
        with tempfile.TemporaryDirectory(prefix="vb-ocr-") as tmp:
            root = Path(tmp) / "page"
            cmd = [
                "pdftoppm", "-f", str(page), "-l", str(page), "-r", str(self.config.dpi), "-gray",
                "-png", "-singlefile", str(src), str(root),
            ]
            timeout = self._timeout()
            try:
                proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise PageError(f"rendering the page took longer than {timeout:.0f} s") from None
            out = root.with_suffix(".png")
            if proc.returncode != 0 or not out.exists():
                msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
                raise PageError(f"the page cannot be rendered: {(msg[-1] if msg else 'pdftoppm failed')[:160]}")
            return self.image_text(str(out))


def _clean(text: str) -> str:
    lines = [ln.rstrip() for ln in text.replace("\x0c", "\n").splitlines()]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()


def unavailable_reason(config: OcrConfig) -> str | None:
    """None when OCR can run with ``config``; otherwise a one-line reason for the report."""
    if not config.enabled:
        return "OCR is off (ingest.ocr.enabled is false)"
    if shutil.which("tesseract") is None:
        return "OCR is off: tesseract is not installed (run scripts/install-tesseract)"
    try:
        import pytesseract
    except ImportError:
        return "OCR is off: the Python package pytesseract is missing"
    try:
        have = set(pytesseract.get_languages(config=""))
    except (OSError, RuntimeError, pytesseract.TesseractError) as err:
        return f"OCR is off: tesseract does not run ({str(err)[:120]})"
    missing = [lang for lang in config.languages.split("+") if lang not in have]
    if missing:
        pkgs = " ".join(f"tesseract-ocr-{m}" for m in missing)
        return f"OCR is off: tesseract language data missing for {'+'.join(missing)} (install {pkgs})"
    if shutil.which("pdftoppm") is None:
        return "OCR is off: pdftoppm (poppler-utils) is not installed (run scripts/install-tesseract)"
    return None


def limit_threads() -> None:
    """One thread per tesseract run: the workers are the parallelism."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
