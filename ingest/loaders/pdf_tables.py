"""Tables of a PDF page as Markdown, so their rows become units like those of DOCX and HTML tables.

pypdf's plain extraction puts every table cell on a line of its own ("5–7 kg", "60 mg", "240 mg", …):
the rows are lost. Its layout extraction keeps the columns apart by runs of spaces. ``with_tables``
finds the tables in the layout text (a header line and at least two rows whose cells start at the
header's columns; a wrapped cell's further lines are joined to its row) and puts each, as a Markdown
table, in place of the run of plain lines that holds exactly its words in the same order. When the
words do not line up, the plain text stays as it was: nothing is lost or reordered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.loaders.tables import markdown_table

_GAP = re.compile(r"\S+(?: {1,2}\S+)*")  # a cell: words apart by at most two spaces
ALIGN = 2  # a cell starts within this many characters of its column
MIN_ROWS = 2  # below the header
MIN_SHORT_LINES = 6  # plain text with fewer short lines holds no table worth the layout pass


@dataclass
class _Table:
    columns: list[int]
    rows: list[list[list[str]]] = field(default_factory=list)  # row → cell → its lines

    def cells(self) -> list[list[str]]:
        return [[" ".join(lines) for lines in row] for row in self.rows]

    def words(self) -> list[str]:
        return [w for row in self.rows for lines in row for line in lines for w in line.split()]


def _segments(line: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(0)) for m in _GAP.finditer(line)]


def _column(start: int, columns: list[int]) -> int | None:
    for i, c in enumerate(columns):
        if abs(start - c) <= ALIGN:
            return i
    return None


def layout_tables(layout: str) -> list[_Table]:
    """The tables of one page's layout text (see the module doc)."""
    tables: list[_Table] = []
    current: _Table | None = None

    def close() -> None:
        nonlocal current
        if current is not None and len(current.rows) >= 1 + MIN_ROWS and _well_formed(current):
            tables.append(current)
        current = None

    for line in layout.splitlines():
        if not line.strip():
            continue
        segs = _segments(line)
        if current is not None:
            cols = [_column(s, current.columns) for s, _ in segs]
            if all(c is not None for c in cols) and len(set(cols)) == len(cols):
                if cols[0] == 0 and len(segs) >= 2:  # a new row
                    row: list[list[str]] = [[] for _ in current.columns]
                    for c, (_, text) in zip(cols, segs, strict=True):
                        row[c or 0].append(text)  # type: ignore[index]
                    current.rows.append(row)
                    continue
                if cols[0] != 0:  # a wrapped cell's further line(s)
                    for c, (_, text) in zip(cols, segs, strict=True):
                        current.rows[-1][c or 0].append(text)  # type: ignore[index]
                    continue
            close()
        if len(segs) >= 2:  # a header candidate
            current = _Table([s for s, _ in segs], [[[text] for _, text in segs]])
    close()
    return tables


def _well_formed(table: _Table) -> bool:
    """Every header cell and every row's key cell holds a word or number (a bulleted list, its bullets
    in a column of their own, is no table)."""
    cells = table.cells()
    return all(any(ch.isalnum() for ch in c) for c in cells[0]) and all(
        any(ch.isalnum() for ch in row[0]) for row in cells[1:])


def _has_short_lines(text: str) -> bool:
    return sum(1 for ln in text.splitlines() if 0 < len(ln.split()) <= 4) >= MIN_SHORT_LINES


def with_tables(plain: str, layout: str) -> str:
    """``plain`` with each table of ``layout`` in place of the lines that hold its words, as Markdown."""
    lines = plain.splitlines()
    for table in layout_tables(layout):
        words = table.words()
        first = " ".join(table.rows[0][0])
        for i, line in enumerate(lines):
            if line.strip() != first:
                continue
            got: list[str] = []
            j = i
            while j < len(lines) and len(got) < len(words):
                got.extend(lines[j].split())
                j += 1
            if got == words:
                lines[i:j] = markdown_table(table.cells()).split("\n")
                break
    return "\n".join(lines)


def needs_layout(plain: str) -> bool:
    """Whether a page's plain text may hold a table (many short lines): only then is the slower layout
    extraction run."""
    return _has_short_lines(plain)
