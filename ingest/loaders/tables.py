"""Tables as Markdown, so a chunk holds whole rows and the model sees the table's shape."""

from __future__ import annotations

import re

_SEP = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts (the first row is the header) as a Markdown table; '' when empty."""
    rows = [[_cell(c) for c in row] for row in rows]
    rows = [r for r in rows if any(r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def is_markdown_table(text: str) -> bool:
    lines = text.strip().split("\n")
    return len(lines) >= 2 and all(ln.startswith("|") and ln.endswith("|") for ln in lines) and bool(
        _SEP.match(lines[1])
    )
