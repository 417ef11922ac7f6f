"""HTML via selectolax (lexbor): the main text, without navigation, headers, footers and scripts;
list items with their Markdown marker ("1.", "-"), tables as Markdown."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.errors import LoadError
from ingest.loaders.sections import Sections
from ingest.loaders.tables import markdown_table
from ingest.loaders.text import decode_text
from vraagbaak_core.types import ParsedDocument

_DROP = "script, style, noscript, template, nav, header, footer, aside, form, svg, iframe, object, " \
    "[role=navigation], [role=banner], [role=contentinfo], [aria-hidden=true]"
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {"p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption",
                       "address", "table"}
_SPACES = re.compile(r"[ \t\u00a0]+")


def _clean(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _has_block_ancestor(node: LexborNode, root: LexborNode) -> bool:
    parent = node.parent
    while parent is not None and parent.mem_id != root.mem_id:
        if parent.tag in _BLOCKS:
            return True
        parent = parent.parent
    return False


def _table(table: LexborNode) -> str:
    """A table as Markdown: its caption, then its rows (those of nested tables stay inside their cell)."""
    rows: list[list[str]] = []
    for tr in table.css("tr"):
        owner = tr.parent
        while owner is not None and owner.tag != "table":
            owner = owner.parent
        if owner is None or owner.mem_id != table.mem_id:
            continue
        rows.append([_clean(c.text(deep=True, separator=" ")) for c in tr.iter() if c.tag in ("td", "th")])
    caption = table.css_first("caption")
    md = markdown_table(rows)
    if caption is not None and md:
        return f"{_clean(caption.text(deep=True, separator=' '))}\n\n{md}"
    return md


def _marker(li: LexborNode) -> str:
    """A list item's marker as Markdown writes it: "3." in an ``<ol>`` (its ``start`` counted), else "-";
    so the numbered steps of a procedure stay a list of steps (``retrieval.units``)."""
    parent = li.parent
    if parent is None or parent.tag != "ol":
        return "-"
    try:
        n = int(parent.attributes.get("start") or 1)
    except ValueError:
        n = 1
    sibling = parent.child
    while sibling is not None and sibling.mem_id != li.mem_id:
        n += sibling.tag == "li"
        sibling = sibling.next
    return f"{n}."


class HtmlLoader:
    formats: tuple[str, ...] = ("html",)

    def load(self, data: bytes, name: str) -> ParsedDocument:
        tree = LexborHTMLParser(decode_text(data))
        title_node = tree.css_first("title")
        title = _clean(title_node.text()) if title_node is not None else ""
        for node in tree.css(_DROP):
            node.decompose()
        root = tree.css_first("main") or tree.css_first("[role=main]") or tree.css_first("article")
        root = root or tree.body
        if root is None:
            raise LoadError("HTML document without a body")
        sections = Sections()
        for node in root.css("*"):
            if node.tag not in _BLOCKS or _has_block_ancestor(node, root):
                continue
            text = _table(node) if node.tag == "table" else _clean(node.text(deep=True, separator=" "))
            if not text:
                continue
            if node.tag == "li":
                text = f"{_marker(node)} {text}"
            if node.tag in _HEADINGS:
                sections.add_heading(text)
            else:
                sections.add(text)
        sections.flush()
        if not sections.blocks:  # text outside block elements (e.g. bare text in <div>s)
            sections.add(_clean(root.text(deep=True, separator="\n")))
        return sections.document(title, "html", name)
