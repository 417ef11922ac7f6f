"""Text blocks under their section headings: the part every structured loader shares."""

from __future__ import annotations

from pathlib import PurePath

from ingest.errors import LoadError
from vraagbaak_core.types import Block, ParsedDocument


class Sections:
    """Collects paragraphs; a heading closes the running section and opens the next one."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.heading: str | None = None
        self.first_heading: str | None = None
        self._buf: list[str] = []

    def add_heading(self, text: str) -> None:
        self.flush()
        self.heading = text
        self.first_heading = self.first_heading or text
        self._buf.append(text)  # the heading stays in its section's text

    def add(self, text: str) -> None:
        self._buf.append(text)

    def flush(self) -> None:
        body = "\n\n".join(self._buf).strip()
        if body:
            self.blocks.append(Block(text=body, heading=self.heading))
        self._buf.clear()

    def document(self, title: str, fmt: str, name: str) -> ParsedDocument:
        """The parsed document; the title falls back to the first heading, then the file name."""
        self.flush()
        if not self.blocks:
            raise LoadError(f"no text in {fmt.upper()} document")
        return ParsedDocument(title=title or self.first_heading or PurePath(name).stem, format=fmt,
                              blocks=self.blocks)
