"""A document handed over in parts of pages (``vraagbaak_core.ports.PagedLoader``), and joining them."""

from __future__ import annotations

from collections.abc import Iterable

from vraagbaak_core.types import ParsedDocument


def join_parts(parts: Iterable[ParsedDocument]) -> ParsedDocument:
    """The whole document: every part's blocks in order, the first part's title and properties,
    the notes and OCR pages of all of them."""
    whole: ParsedDocument | None = None
    for part in parts:
        if whole is None:
            whole = ParsedDocument(
                title=part.title, format=part.format, blocks=list(part.blocks), properties=dict(part.properties),
                ocr_pages=part.ocr_pages, notes=list(part.notes), pages=part.pages,
            )
            continue
        whole.blocks.extend(part.blocks)
        whole.ocr_pages += part.ocr_pages
        whole.notes.extend(part.notes)
    if whole is None:
        raise ValueError("a document needs at least one part")
    return whole
