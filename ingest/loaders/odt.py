"""ODT (OpenDocument Text) via odfpy: ``text:h`` elements start sections; a list item's first paragraph
gets the marker the reader sees ("3." where the list style numbers that level, "-" otherwise), counted per
list from the level's ``text:start-value`` (an item's own start value and ``text:continue-numbering``
honoured), so a protocol's numbered steps stay a list of steps (``retrieval.units``)."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.parsers.expat import ExpatError
from xml.sax import SAXException

from odf import teletype
from odf.namespaces import METANS, STYLENS, TABLENS, TEXTNS
from odf.opendocument import load as odf_load

from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits, guard_zip
from ingest.loaders.sections import Sections
from ingest.loaders.tables import markdown_table
from vraagbaak_core.types import ParsedDocument

_BLOCK_TAGS = {(TEXTNS, "p"), (TEXTNS, "h")}
_TABLE = (TABLENS, "table")


_LIST = (TEXTNS, "list")
_ITEM = (TEXTNS, "list-item")


def _walk(node: Any) -> Any:
    for child in node.childNodes:
        if getattr(child, "qname", None) in _BLOCK_TAGS or getattr(child, "qname", None) == _TABLE:
            yield child
        elif getattr(child, "childNodes", None):
            yield from _walk(child)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _list_styles(doc: Any) -> dict[str, dict[int, tuple[bool, int]]]:
    """List style name -> level -> (numbered, start value)."""
    out: dict[str, dict[int, tuple[bool, int]]] = {}
    for container in (doc.automaticstyles, doc.styles):
        for el in getattr(container, "childNodes", []):
            if getattr(el, "qname", None) != (TEXTNS, "list-style"):
                continue
            levels: dict[int, tuple[bool, int]] = {}
            for lvl in el.childNodes:
                local = getattr(lvl, "qname", (None, ""))[1]
                level = _int(lvl.getAttrNS(TEXTNS, "level"), 1) if local.startswith("list-level-style") else 0
                if local == "list-level-style-number":
                    numbered = bool(lvl.getAttrNS(STYLENS, "num-format"))
                    levels[level] = (numbered, _int(lvl.getAttrNS(TEXTNS, "start-value"), 1))
                elif local in ("list-level-style-bullet", "list-level-style-image"):
                    levels[level] = (False, 1)
            out.setdefault(str(el.getAttrNS(STYLENS, "name")), levels)
    return out


class _Lists:
    """Walks the body as :func:`_walk` does, and gives each list item's first paragraph its marker."""

    def __init__(self, doc: Any) -> None:
        self.styles = _list_styles(doc)
        self.last: dict[str, int] = {}  # the last number of a style's top level, for text:continue-numbering

    def walk(self, node: Any, style: str = "", level: int = 0) -> Any:
        for child in node.childNodes:
            q = getattr(child, "qname", None)
            if q == _LIST:
                yield from self._list(child, style, level + 1)
            elif q in _BLOCK_TAGS or q == _TABLE:
                yield child, ""
            elif getattr(child, "childNodes", None):
                yield from self.walk(child, style, level)

    def _list(self, lst: Any, style: str, level: int) -> Any:
        style = str(lst.getAttrNS(TEXTNS, "style-name") or style)
        numbered, start = self.styles.get(style, {}).get(level, (False, 1))
        n = start - 1
        if level == 1 and lst.getAttrNS(TEXTNS, "continue-numbering") == "true":
            n = self.last.get(style, n)
        for item in lst.childNodes:
            if getattr(item, "qname", None) != _ITEM:
                continue
            n = _int(item.getAttrNS(TEXTNS, "start-value"), n + 1)
            marker = f"{n}." if numbered else "-"
            for el, inner in self.walk(item, style, level):
                yield el, inner or marker
                marker = ""
        if level == 1:
            self.last[style] = n


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
        for el, marker in _Lists(doc).walk(doc.text):
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
                sections.add(f"{marker} {text}" if marker else text)
        parsed = sections.document(title, "odt", name)
        parsed.properties = properties
        return parsed
