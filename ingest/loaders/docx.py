"""DOCX via python-docx: headings (Word's Heading/Kop/Title styles) start sections; tables as Markdown."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree
from lxml.etree import XMLSyntaxError

from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits, guard_zip
from ingest.loaders.sections import Sections
from ingest.loaders.tables import markdown_table
from vraagbaak_core.types import ParsedDocument

_HEADING_STYLE = re.compile(r"^(heading|kop)\s*\d|^title$|^titel$", re.I)


def _iter_body(doc: object) -> Iterator[Paragraph | Table]:
    body = doc.element.body  # type: ignore[attr-defined]
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, doc)  # type: ignore[arg-type]
        elif tag == "tbl":
            yield Table(child, doc)  # type: ignore[arg-type]


def _table_text(table: Table) -> str:
    """The table as Markdown (first row as header); horizontally merged cells once."""
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is returned once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text.strip())
        rows.append(cells)
    return markdown_table(rows)


def _properties(doc: Any, data: bytes) -> dict[str, Any]:
    """Core properties that carry document control, plus the custom properties (docProps/custom.xml)."""
    core = doc.core_properties
    props: dict[str, Any] = {}
    for key in ("version", "content_status", "identifier", "revision"):
        value = getattr(core, key, None)
        if value and key != "revision":
            props[key] = str(value)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if "docProps/custom.xml" not in zf.namelist():
                return props
            info = zf.getinfo("docProps/custom.xml")
            if info.file_size > 1_000_000:
                return props
            root = etree.fromstring(zf.read(info), parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except (zipfile.BadZipFile, KeyError, XMLSyntaxError):
        return props
    for prop in root:
        name = prop.get("name")
        if name and len(prop):
            props[name] = (prop[0].text or "").strip()
    return props


class DocxLoader:
    formats: tuple[str, ...] = ("docx",)

    def __init__(self, limits: LoaderLimits | None = None) -> None:
        self.limits = limits or LoaderLimits()

    def load(self, data: bytes, name: str) -> ParsedDocument:
        guard_zip(data, self.limits)
        try:
            doc = Document(io.BytesIO(data))
        except (zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as err:
            raise LoadError(f"corrupt DOCX: {str(err)[:200] or type(err).__name__}") from None
        title = (doc.core_properties.title or "").strip()
        sections = Sections()
        for item in _iter_body(doc):
            if isinstance(item, Table):
                t = _table_text(item)
                if t:
                    sections.add(t)
                continue
            text = item.text.strip()
            if not text:
                continue
            style = item.style.name if item.style is not None and item.style.name else ""
            if _HEADING_STYLE.match(style):
                sections.add_heading(text)
            else:
                sections.add(text)
        parsed = sections.document(title, "docx", name)
        parsed.properties = _properties(doc, data)
        return parsed
