"""DOCX via python-docx: headings (Word's Heading/Kop/Title styles) start sections; tables as Markdown;
list paragraphs with their markers as Markdown writes them ("3." for Word's numbering, "-" for bullets).

Word does not store a numbered list's numbers in the text: a paragraph refers to a numbering definition
(``w:numPr``, on the paragraph or through its style, "List Number" / "Lijstnummering"), and Word counts.
Without the numbers a procedure's steps are loose sentences (``retrieval.units`` finds lists of steps by
their markers), so the loader counts as Word does: per list (``numId``) and level, from the level's start
(or the list's ``startOverride``), deeper levels starting again under each item of a shallower one."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from docx import Document
from docx.oxml.ns import qn
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


_LETTER_FORMATS = {"lowerLetter": "abcdefghijklmnopqrstuvwxyz", "upperLetter": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


class _ListNumbers:
    """The marker of each list paragraph, counted as Word counts (see the module's docstring)."""

    def __init__(self, doc: Any) -> None:
        self._levels: dict[str, dict[int, tuple[str, int]]] = {}  # numId -> ilvl -> (numFmt, start)
        self._counts: dict[str, dict[int, int]] = {}
        try:
            numbering = doc.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return  # no numbering part: no list is numbered
        abstract: dict[str, dict[int, tuple[str, int]]] = {}
        for a in numbering.findall(qn("w:abstractNum")):
            abstract[a.get(qn("w:abstractNumId"))] = {
                _int(lvl.get(qn("w:ilvl")), 0): (_val(lvl, "w:numFmt") or "decimal", _int(_val(lvl, "w:start"), 1))
                for lvl in a.findall(qn("w:lvl"))
            }
        for num in numbering.findall(qn("w:num")):
            levels = dict(abstract.get(_val(num, "w:abstractNumId") or "", {}))
            for override in num.findall(qn("w:lvlOverride")):
                ilvl = _int(override.get(qn("w:ilvl")), 0)
                start = _val(override, "w:startOverride")
                if start is not None and ilvl in levels:
                    levels[ilvl] = (levels[ilvl][0], _int(start, 1))
            self._levels[num.get(qn("w:numId"))] = levels

    def marker(self, paragraph: Paragraph) -> str:
        """"3.", "b.", "-" or "" (not a list paragraph, or a level without a marker)."""
        found = _num_pr(paragraph)
        if found is None:
            return ""
        num_id, ilvl = found
        fmt, start = self._levels.get(num_id, {}).get(ilvl, ("bullet" if num_id not in self._levels else "", 1))
        if fmt in ("bullet", ""):
            return "-" if fmt == "bullet" else ""
        if fmt == "none":
            return ""
        counts = self._counts.setdefault(num_id, {})
        for deeper in [lvl for lvl in counts if lvl > ilvl]:
            del counts[deeper]
        counts[ilvl] = counts.get(ilvl, start - 1) + 1
        n = counts[ilvl]
        if fmt in _LETTER_FORMATS:
            letters = _LETTER_FORMATS[fmt]
            return f"{letters[(n - 1) % len(letters)]}."
        return f"{n}." if fmt.startswith("decimal") else "-"


def _val(element: Any, tag: str) -> str | None:
    child = element.find(qn(tag))
    return None if child is None else child.get(qn("w:val"))


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _num_pr(paragraph: Paragraph) -> tuple[str, int] | None:
    """(numId, level) of a list paragraph: its own ``w:numPr``, else its style's (or a base style's)."""
    candidates = [paragraph._p.pPr]
    style = paragraph.style
    seen = 0
    while style is not None and seen < 10:  # a style's base style, and so on (never a loop)
        candidates.append(style.element.pPr)
        style, seen = style.base_style, seen + 1
    for ppr in candidates:
        num_pr = None if ppr is None else ppr.find(qn("w:numPr"))
        if num_pr is None:
            continue
        num_id = _val(num_pr, "w:numId")
        if num_id is None:
            continue
        if num_id == "0":
            return None  # numbering switched off for this paragraph
        return num_id, _int(_val(num_pr, "w:ilvl"), 0)
    return None


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
        lists = _ListNumbers(doc)
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
                marker = lists.marker(item)
                sections.add(f"{marker} {text}" if marker else text)
        parsed = sections.document(title, "docx", name)
        parsed.properties = _properties(doc, data)
        return parsed
