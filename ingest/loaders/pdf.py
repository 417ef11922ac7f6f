"""PDF via pypdf: one block per page (page numbers kept), section from the outline; long ones in parts of pages;
tables as Markdown (``pdf_tables``)."""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits
from ingest.loaders.parts import join_parts
from ingest.loaders.pdf_tables import needs_layout, with_tables
from ingest.ocr import Ocr, PageError
from vraagbaak_core.types import Block, ParsedDocument

# pypdf warns loudly about every oddity of real PDFs; the report carries what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _outline_sections(reader: PdfReader) -> dict[int, str]:
    """First-level-and-deeper outline titles by 0-based page index (best effort)."""
    found: dict[int, str] = {}

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                page = reader.get_destination_page_number(item)
                title = str(item.title).strip()
            except (PyPdfError, AttributeError, KeyError, ValueError, TypeError, IndexError):
                continue
            if page is not None and page >= 0 and title and page not in found:
                found[page] = title

    try:
        walk(list(reader.outline))
    except (PyPdfError, AttributeError, KeyError, ValueError, TypeError, IndexError, RecursionError):
        return {}
    return found


class PdfLoader:
    formats: tuple[str, ...] = ("pdf",)

    def __init__(self, limits: LoaderLimits | None = None, ocr: Ocr | None = None) -> None:
        self.limits = limits or LoaderLimits()
        self.ocr = ocr

    def load(self, data: bytes, name: str) -> ParsedDocument:
        return join_parts(self.load_parts(data, name, 0))

    def load_parts(self, data: bytes, name: str, pages: int) -> Iterator[ParsedDocument]:
        """The document in parts of ``pages`` pages (0: one part), as it is read (``PagedLoader``)."""
        try:
            yield from self._parts(data, name, pages)
        except LoadError:
            raise
        except FileNotDecryptedError:
            raise LoadError("encrypted PDF: a password is needed to read it") from None
        except LimitReachedError as err:
            raise LoadError(f"decompression bomb: a PDF stream exceeds the size limit ({err})") from None
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError,
                RecursionError, OSError, ZeroDivisionError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise LoadError(f"corrupt or unreadable PDF: {msg[:200]}") from None

    def _open(self, data: bytes) -> PdfReader:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password (only printing restricted).
            try:
                ok = reader.decrypt("")
            except (PyPdfError, NotImplementedError, ValueError) as err:
                raise LoadError(f"encrypted PDF that cannot be opened: {err}") from None
            if not ok:
                raise LoadError("encrypted PDF: a password is needed to read it")
        return reader

    def _parts(self, data: bytes, name: str, per_part: int) -> Iterator[ParsedDocument]:
        reader = self._open(data)
        n_pages = len(reader.pages)
        if n_pages > self.limits.max_pages:
            raise LoadError(f"too many pages: {n_pages} (limit {self.limits.max_pages}, ingest.max_pages)")
        sections = _outline_sections(reader)
        title, properties = _metadata(reader, name)

        def part(blocks: list[Block], ocr_pages: int = 0, notes: list[str] | None = None) -> ParsedDocument:
            return ParsedDocument(
                title=title, format="pdf", blocks=blocks, properties=dict(properties), ocr_pages=ocr_pages,
                notes=notes or [], pages=n_pages,
            )

        blocks: list[Block] = []
        any_text = False
        no_text: list[int] = []
        failed: list[str] = []
        ocr = self.ocr if self.ocr is not None and self.ocr.available else None
        tmp = tempfile.TemporaryDirectory(prefix="vb-pdf-") if ocr is not None else None
        try:
            section: str | None = None
            src: Path | None = None
            for i, page in enumerate(reader.pages):
                section = sections.get(i, section)
                text = (page.extract_text() or "").replace("\x00", "").strip()
                if text and needs_layout(text):
                    text = _with_tables(page, text)
                if not text:
                    no_text.append(i + 1)
                    if ocr is not None and tmp is not None:
                        if src is None:
                            src = Path(tmp.name) / "document.pdf"
                            src.write_bytes(data)
                        try:
                            text = ocr.pdf_page_text(src, i + 1)
                        except PageError as err:
                            failed.append(f"page {i + 1}: {err}")
                if text:
                    blocks.append(Block(text=text, page=i + 1, heading=section))
                if per_part > 0 and (i + 1) % per_part == 0 and i + 1 < n_pages:
                    any_text = any_text or bool(blocks)
                    yield part(blocks)
                    blocks = []
        finally:
            if tmp is not None:
                tmp.cleanup()
        any_text = any_text or bool(blocks)
        notes: list[str] = []
        ocr_pages = len(no_text) - len(failed) if ocr is not None else 0
        if no_text and ocr is None:
            why = self.ocr.reason if self.ocr is not None else "OCR is off"
            if not any_text:
                raise LoadError(f"no extractable text in {n_pages} page(s): a scan without a text layer, and {why}")
            notes.append(f"{len(no_text)} page(s) without a text layer not read ({_pages(no_text)}): {why}")
        elif no_text:
            langs = ocr.config.languages if ocr is not None else ""
            notes.append(f"OCR ({langs}) on {ocr_pages} of {len(no_text)} page(s) without a text layer")
            notes.extend(f"OCR failed on {f}" for f in failed)
        if not any_text:
            detail = f" ({'; '.join(failed)[:300]})" if failed else ""
            raise LoadError(f"no text in {n_pages} page(s), OCR found none either{detail}")
        yield part(blocks, ocr_pages, notes)


def _with_tables(page: Any, plain: str) -> str:
    """The page's text with its tables as Markdown (``pdf_tables``); the plain text when the layout
    extraction fails."""
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError, RecursionError,
            OSError, ZeroDivisionError):
        return plain
    return with_tables(plain, layout.replace("\x00", ""))


def _metadata(reader: PdfReader, name: str) -> tuple[str, dict[str, Any]]:
    """The title (the file name's stem when the PDF states none) and the info dictionary's fields."""
    title = ""
    properties: dict[str, Any] = {}
    try:
        meta = reader.metadata
        title = str(meta.title).replace("\x00", "").strip() if meta is not None and meta.title else ""
        for key, value in (meta or {}).items():
            if isinstance(value, str | int | float):
                properties[str(key).lstrip("/")] = str(value).replace("\x00", "").strip()
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
        title = ""
    return title or PurePath(name).stem, properties


def _pages(pages: list[int]) -> str:
    shown = ", ".join(str(p) for p in pages[:10])
    return f"page {shown}" + (f" and {len(pages) - 10} more" if len(pages) > 10 else "")
