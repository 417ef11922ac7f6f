"""Detect a file's format from its content (magic bytes), using the name only as a hint.

Returns one of ``pdf``, ``docx``, ``odt``, ``html``, ``markdown``, ``text``, ``image``
(PNG, JPEG, TIFF: read with OCR); anything else
raises :class:`UnsupportedFormat` with a one-line reason.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePath

from ingest.errors import UnsupportedFormat

FORMATS = ("pdf", "docx", "odt", "html", "markdown", "text", "image")
# images that are read with OCR (ingest.ocr)
_IMAGES: tuple[bytes, ...] = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}

# Binary formats we recognise only to name them in the rejection.
_KNOWN_BINARY: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy MS Office (OLE) file; save it as DOCX or PDF"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-zip archive"),
    (b"Rar!", "RAR archive"),
    (b"\x7fELF", "ELF executable"),
    (b"MZ", "Windows executable"),
    (b"{\\rtf", "RTF document; save it as DOCX or PDF"),
)
_HTML_SNIFF = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)
_HTML_TAGS = re.compile(rb"<(html|head|body|p|div|h[1-6]|article|main)\b[^>]*>", re.I)


def detect_format(data: bytes, name: str) -> str:
    if not data:
        raise UnsupportedFormat("empty file (0 bytes)")
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_format(data)
    if data.startswith(_IMAGES):
        return "image"
    for magic, what in _KNOWN_BINARY:
        if data.startswith(magic):
            raise UnsupportedFormat(f"unsupported file type: {what}")
    suffix = PurePath(name).suffix.lower()
    # Text-like from here on: decodability is checked by the text decoder.
    sniff = _sniff_text_head(data)
    if suffix in HTML_SUFFIXES or _HTML_SNIFF.match(sniff) or (
        suffix not in MARKDOWN_SUFFIXES and len(_HTML_TAGS.findall(sniff)) >= 3
    ):
        return "html"
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    return "text"


def _sniff_text_head(data: bytes) -> bytes:
    """The first KiB as ASCII-ish bytes (UTF-16 reduced to its low bytes) for tag sniffing."""
    head = data[:2048]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return head.decode("utf-16", errors="ignore").encode("ascii", errors="ignore")
        except UnicodeError:  # pragma: no cover - errors="ignore"
            return head
    return head.removeprefix(b"\xef\xbb\xbf")


def _zip_format(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" in names:
                return "docx"
            if "mimetype" in names:
                mimetype = zf.read("mimetype")[:200].strip()
                if mimetype == ODT_MIMETYPE:
                    return "odt"
                raise UnsupportedFormat(
                    f"unsupported OpenDocument type {mimetype.decode('ascii', 'replace')!r} "
                    "(only text documents, .odt)"
                )
            if "xl/workbook.xml" in names:
                raise UnsupportedFormat("unsupported file type: Excel workbook (XLSX)")
            if "ppt/presentation.xml" in names:
                raise UnsupportedFormat("unsupported file type: PowerPoint presentation (PPTX)")
    except zipfile.BadZipFile as err:
        raise UnsupportedFormat(f"corrupt ZIP container: {err}") from None
    raise UnsupportedFormat("unsupported file type: ZIP archive that is neither DOCX nor ODT")
