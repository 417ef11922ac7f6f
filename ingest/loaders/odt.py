"""ODT (OpenDocument Text) via odfpy: ``text:h`` elements start sections."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.parsers.expat import ExpatError
from xml.sax import SAXException

from odf import teletype
from odf.namespaces import METANS, TEXTNS
from odf.opendocument import load as odf_load

from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits, guard_zip
from ingest.loaders.sections import Sections
from vraagbaak_core.types import ParsedDocument

_BLOCK_TAGS = {(TEXTNS, "p"), (TEXTNS, "h")}


def _walk(node: Any) -> Any:
    for child in node.childNodes:
        if getattr(child, "qname", None) in _BLOCK_TAGS:
            yield child
        elif getattr(child, "childNodes", None):
            yield from _walk(child)


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
