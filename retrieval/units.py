"""Quotable units of a chunk: sentences, table rows with their column headers, and numbered steps.

One segmentation, used by ingest (which embeds every unit once, see ``retrieval.unit_vectors``) and by
the extractive answerer (which quotes them), so the vectors stored with a chunk line up with the units
the answerer finds in it.

- **Sentences**: paragraphs and list items split with pySBD (Dutch or English) with a Dutch
  abbreviation list on top; markup (``**``, bullets, heading marks) stripped; headings left out.
- **Table rows**: every row of a Markdown table (the loaders render tables so) becomes
  ``"<key> — <header>: <cell>; <header>: <cell>"``, the key being the first cell (prefixed by its
  column header when it is a number or range: ``"Bradenscore 10–12 — Maatregel: wisselliggen elke 3 uur"``).
  The header row itself is no unit.
- **Steps**: a run of two or more numbered (or bulleted) list items, with the line that introduces it
  when that ends in a colon, is also one unit (``kind="steps"``), its items on their own lines, so a
  procedure can be quoted whole.

Every word of a unit is a word of the chunk: units are quotable verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

UnitKind = Literal["sentence", "row", "steps"]

HEADING_WORDS = 8
# pySBD's Dutch rules split after these; a segment that ends in one continues in the next.
_ABBREVIATIONS = frozenset(
    "a.u.b afd art bijv bv ca d.w.z dhr dr drs e.d e.g enz etc evt excl fig i.e i.o.m i.p.v i.v.m "
    "incl ing ir jl m.b.t m.b.v m.u.v max min mevr mr mw n.a.v nl nr o.a o.b.v p pag prof resp st "
    "t.a.v t.b.v t.z.t tel vgl vs z.o.z z.s.m zgn".split()
)
_ABBREV_END = re.compile(r"(?:^|[\s(])((?:[A-Za-z]{1,5}\.)+)\s*$")
_BLOCK_START = re.compile(r"^\s*(?:#{1,6}\s|[-*•+]\s|\d{1,3}[.)]\s|\|)")
_ITEM = re.compile(r"^\s*(?:(?P<num>\d{1,3})[.)]|[-*•+])\s+")
# a list number or bullet alone on its line, its text on the next (how PDF text extraction leaves
# lists; reportlab's bullet comes out as U+007F)
_LONE_NUMBER = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*•+\x7f▪●◦])\s*$")
_SECTION_NUMBER = re.compile(r"^\d{1,3}(?:\.\d{1,3})*[.)]?\s+")
_LEADING_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*•+]\s+|\d{1,3}[.)]\s+|>\s*)+")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_SINGLE_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_TABLE_RULE = re.compile(r"^[\s|:\-+]+$")
# a key that is a number, a range or a bound ("10–12", "< 4", "meer dan 800 ml"): its column header goes first
_NUMERIC_KEY = re.compile(r"^(?:[<>≤≥=~±]|(?:hoger|lager|meer|minder|groter|kleiner) dan|boven|onder|vanaf|tot"
                          r"|more than|less than|over|under|above|below|up to)?\s*\d", re.I)


@dataclass(frozen=True)
class Unit:
    """One quotable piece of a chunk, in reading order."""

    text: str
    kind: UnitKind = "sentence"
    position: int = 0  # order within the chunk
    key: str = ""  # a table row's first cell (matched against numbers in the question)


@dataclass(frozen=True)
class _Block:
    kind: Literal["para", "item", "row", "rule"]
    text: str
    cells: tuple[str, ...] = ()
    numbered: bool = False


@lru_cache(maxsize=2)
def _segmenter(language: str) -> object:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def _is_heading(line: str, following: str | None, previous: str | None = None) -> bool:
    """A short line without closing punctuation before a new capitalised line (or the end): a heading
    as PDF and plain-text extraction leave them."""
    stripped = line.strip()
    if stripped.startswith("#"):
        return True
    nxt = (following or "").strip()
    numbered = _SECTION_NUMBER.match(stripped)
    if numbered:  # "3. Toegang tot dossiers" before its paragraph; not an item of a numbered list
        if _in_list(stripped, nxt, (previous or "").strip()):
            return False
        stripped = stripped[numbered.end() :]
    if len(stripped.split()) > HEADING_WORDS or stripped[-1:] in ".!?:;,…" or not stripped[:1].isupper():
        return False
    return not nxt or nxt[:1].isupper() or nxt[:1].isdigit() or bool(_LONE_NUMBER.match(nxt))


def _in_list(line: str, following: str, previous: str) -> bool:
    """Whether a numbered line is an item of the list around it: a numbered line next to it counts on
    from it ("5. Doorspoelen" before "1. Desinfecteer …" is a heading, so is "6. Overige" before "- …")."""
    n = _number(line)
    if n is None:  # "3.1 Doel": a section number
        return bool(_BLOCK_START.match(following) or _BLOCK_START.match(previous))
    for other, step in ((following, 1), (previous, -1)):
        m = _number(other)
        if m is not None and m == n + step:
            return True
    return False


def _number(line: str) -> int | None:
    m = re.match(r"\s*(\d{1,3})[.)](?:\s|$)", line)
    return int(m.group(1)) if m else None


def _cells(line: str) -> tuple[str, ...]:
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return tuple(_clean(c.replace("\\|", "|")) for c in parts)


def _typed_blocks(text: str) -> list[_Block]:
    """Paragraphs, list items and table rows of a chunk, wrapped lines joined; headings left out."""
    blocks: list[_Block] = []
    current: list[str] = []
    item: re.Match[str] | None = None
    pdf_item = False  # the current item began with its number alone on a line

    def flush() -> None:
        nonlocal current, item
        if current:
            kind: Literal["para", "item"] = "item" if item else "para"
            blocks.append(_Block(kind, " ".join(current), numbered=bool(item and item.group("num"))))
        current, item = [], None

    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            flush()
            continue
        following = next((x for x in lines[i + 1 :] if x.strip()), None)
        previous = next((x for x in reversed(lines[:i]) if x.strip()), None)
        if not line.lstrip().startswith("|") and _is_heading(line, following, previous):
            flush()
            blocks.append(_Block("rule", ""))  # a heading ends a list
            continue
        lone = bool(_LONE_NUMBER.match(line))
        if lone and not line.strip()[:1].isdigit():
            line = "-"  # any bullet as Markdown's
        if lone or _BLOCK_START.match(line):
            flush()
            pdf_item = lone
        elif pdf_item and len(current) > 1 and current[-1][-1:] in ".!?" and line.strip()[:1].isupper():
            # after an item of a PDF's list a sentence that starts on a new line is the next paragraph:
            # extraction leaves no blank line between them
            flush()
            pdf_item = False
        if line.lstrip().startswith("|"):
            if _TABLE_RULE.match(line):
                blocks.append(_Block("rule", "|"))
            else:
                blocks.append(_Block("row", "", _cells(line)))
            continue
        if not current:
            item = _ITEM.match(line.strip() + " " if lone else line)
        current.append(line.strip())
    flush()
    return blocks


def _clean(sentence: str) -> str:
    s = _LEADING_MARKUP.sub("", sentence)
    s = _SINGLE_STAR.sub(r"\1", _EMPHASIS.sub("", s))
    return " ".join(s.split())


def _sentences(block: str, language: str) -> list[str]:
    segmenter = _segmenter(language if language in ("nl", "en") else "nl")
    out: list[str] = []
    pending = ""
    for seg in segmenter.segment(block):  # type: ignore[attr-defined]
        pending = f"{pending} {seg}" if pending else str(seg)
        m = _ABBREV_END.search(pending.rstrip())
        if m and m.group(1).rstrip(".").lower() in _ABBREVIATIONS:
            continue
        cleaned = _clean(pending)
        if cleaned:
            out.append(cleaned)
        pending = ""
    if pending.strip():
        out.append(_clean(pending))
    return out


def row_text(header: tuple[str, ...] | None, cells: tuple[str, ...]) -> str:
    """A table row as a sentence: its key, then each other cell with its column header."""
    cells = tuple(c for c in cells)
    if not any(cells):
        return ""
    key = cells[0]
    if header and header[0] and key and _NUMERIC_KEY.match(key):
        key = f"{header[0]} {key}"
    parts = []
    for i, cell in enumerate(cells[1:], start=1):
        if not cell:
            continue
        name = header[i] if header and i < len(header) else ""
        parts.append(f"{name}: {cell}" if name else cell)
    if not parts:
        return key
    return f"{key} — {'; '.join(parts)}" if key else "; ".join(parts)


def split_sentences(text: str, language: str) -> list[str]:
    """Sentences of ``text`` in reading order, markup stripped; Dutch abbreviations do not end one.
    Table rows are sentences of their cells joined by "; " (header rows too)."""
    out: list[str] = []
    for b in _typed_blocks(text):
        if b.kind == "row":
            joined = "; ".join(c for c in b.cells if c)
            if joined:
                out.append(joined)
        elif b.kind in ("para", "item"):
            out.extend(_sentences(b.text, language))
    return out


def quotable_units(text: str, language: str) -> list[Unit]:
    """The units of a chunk (see the module doc), in reading order."""
    blocks = _typed_blocks(text)
    units: list[Unit] = []

    def add(t: str, kind: UnitKind = "sentence", key: str = "") -> None:
        if t:
            units.append(Unit(t, kind, len(units), key))

    header: tuple[str, ...] | None = None
    pending_rows: list[tuple[str, ...]] = []
    steps: list[str] = []
    lead = ""

    def close_steps() -> None:
        nonlocal steps, lead
        if len(steps) >= 2:
            add("\n".join(([lead] if lead else []) + steps), "steps")
        steps, lead = [], ""

    for i, b in enumerate(blocks):
        if b.kind == "row":
            pending_rows.append(b.cells)
            continue
        if b.kind == "rule" and b.text == "|" and pending_rows:
            header = pending_rows[-1]  # the row above the rule is the header
            pending_rows = pending_rows[:-1]
            continue
        for cells in pending_rows:  # rows of a table
            add(row_text(header, cells), "row", cells[0] if cells else "")
        pending_rows = []
        if b.kind == "item":
            if _LONE_NUMBER.match(b.text):
                continue  # a list number whose text is in the next chunk
            item_sentences = _sentences(b.text, language)
            for s in item_sentences:
                add(s)
            m = _ITEM.match(b.text)
            body = " ".join(item_sentences)
            if body:
                steps.append(f"{m.group('num')}. {body}" if m and m.group("num") else body)
            continue
        close_steps()
        if b.kind == "para":
            sentences = _sentences(b.text, language)
            for s in sentences:
                add(s)
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if sentences and sentences[-1].endswith(":") and nxt is not None and nxt.kind == "item":
                lead = sentences[-1]
    for cells in pending_rows:
        add(row_text(header, cells), "row", cells[0] if cells else "")
    close_steps()
    return units
