"""One loader per format, behind ``vraagbaak_core.ports.Loader``; :func:`parse` picks by content."""

from __future__ import annotations

from ingest.detect import detect_format
from ingest.loaders.docx import DocxLoader
from ingest.loaders.html import HtmlLoader
from ingest.loaders.image import ImageLoader
from ingest.loaders.limits import LoaderLimits
from ingest.loaders.markdown import MarkdownLoader
from ingest.loaders.odt import OdtLoader
from ingest.loaders.pdf import PdfLoader
from ingest.loaders.text import TextLoader
from ingest.ocr import Ocr
from vraagbaak_core.ports import Loader
from vraagbaak_core.types import ParsedDocument

__all__ = ["LoaderLimits", "build_loaders", "parse"]


def build_loaders(limits: LoaderLimits | None = None, ocr: Ocr | None = None) -> dict[str, Loader]:
    """``ocr``: Tesseract for pages without a text layer and images; None: OCR off."""
    limits = limits or LoaderLimits()
    loaders: list[Loader] = [
        PdfLoader(limits, ocr),
        ImageLoader(limits, ocr),
        DocxLoader(limits),
        OdtLoader(limits),
        HtmlLoader(),
        MarkdownLoader(),
        TextLoader(),
    ]
    return {fmt: loader for loader in loaders for fmt in loader.formats}


def parse(data: bytes, name: str, limits: LoaderLimits | None = None, ocr: Ocr | None = None) -> ParsedDocument:
    """Detect the format from the content and parse; raises LoadError with a one-line reason."""
    fmt = detect_format(data, name)
    return build_loaders(limits, ocr)[fmt].load(data, name)
