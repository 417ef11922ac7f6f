"""ODT (OpenDocument Text) via odfpy: ``text:h`` elements start sections."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.parsers.expat import ExpatError
from xml.sax import SAXException

from odf import teletype
from odf.namespaces import METANS, TABLENS, TEXTNS
from odf.opendocument import load as odf_load

from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits, guard_zip
from ingest.loaders.sections import Sections
from ingest.loaders.tables import markdown_table
from vraagbaak_core.types import ParsedDocument

_BLOCK_TAGS = {(TEXTNS, "p"), (TEXTNS, "h")}
_TABLE = (TABLENS, "table")


def _walk(node: Any) -> Any:
    for child in node.childNodes:
        if getattr(child, "qname", None) in _BLOCK_TAGS or getattr(child, "qname", None) == _TABLE:
            yield child
        elif getattr(child, "childNodes", None):
            yield from _walk(child)


def _rows(node: Any) -> Any:
    for child in node.childNodes:
        q = getattr(child, "qname", None)
        if q == (TABLENS, "table-row"):
            yield child
        elif q in ((TABLENS, "table-header-rows"), (TABLENS, "table-rows"), (TABLENS, "table-row-group")):
            yield from _rows(child)


def _table(table: Any) -> str:
    rows: list[list[str]] = []
    for row in _rows(table):
        cells = [
            " ".join(teletype.extractText(p).strip() for p in _walk(c) if p.qname != _TABLE).strip()
            for c in row.childNodes if getattr(c, "qname", None) == (TABLENS, "table-cell")
        ]
        rows.append(cells)
    return markdown_table(rows)


class OdtLoader:
    formats: tuple[str, ...] = ("odt",)

    def __init__(self, limits: LoaderLimits | None = None) -> None:
        self.limits = limits or LoaderLimits()

    def load(self, data: bytes, name: str) -> ParsedDocument:
        guard_zip(data, self.limits)
        try:
            doc = odf_load(io.BytesIO(data))
        except (zipfile.BadZipFile, KeyError, ValueError, ExpatError, SAXException) as err:
            raise LoadError(f"corrupt ODT: {str(err)[:200] or type(err).__name__}") from None
        title = ""
        properties: dict[str, Any] = {}
        for el in doc.meta.childNodes:
            local = getattr(el, "qname", (None, None))[1]
            if local == "title":
                title = teletype.extractText(el).strip()
            elif local == "user-defined":
                key = el.getAttrNS(METANS, "name")
                if key:
                    properties[key] = teletype.extractText(el).strip()
        sections = Sections()
        for el in _walk(doc.text):
            if el.qname == _TABLE:
                table = _table(el)
                if table:
                    sections.add(table)
                continue
            text = teletype.extractText(el).strip()
            if not text:
                continue
            if el.qname == (TEXTNS, "h"):
                sections.add_heading(text)
            else:
                sections.add(text)
        parsed = sections.document(title, "odt", name)
        parsed.properties = properties
        return parsed
