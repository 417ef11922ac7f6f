"""Markdown: ATX (``#``) and setext headings become sections; fenced code is left whole."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

import yaml

from ingest.errors import LoadError
from ingest.loaders.text import decode_text
from vraagbaak_core.types import Block, ParsedDocument

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def parse_markdown(text: str) -> tuple[str | None, list[Block]]:
    text = _FRONT_MATTER.sub("", text, count=1)
    blocks: list[Block] = []
    title: str | None = None
    heading: str | None = None
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            blocks.append(Block(text=body, heading=heading))
        buf.clear()

    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            buf.append(line)
            continue
        if not in_fence:
            m = _ATX.match(line)
            setext = (
                _SETEXT.match(line) is not None
                and buf
                and buf[-1].strip() != ""
                and i > 0
                and not _ATX.match(lines[i - 1])
            )
            if m or setext:
                if m:
                    level, name = len(m.group(1)), m.group(2).strip()
                else:
                    name = buf.pop().strip()
                    level = 1 if line.strip().startswith("=") else 2
                flush()
                heading = name or heading
                if level == 1 and title is None and name:
                    title = name
                buf.append(name)  # the heading stays in the section's text
                continue
        buf.append(line)
    flush()
    return title, blocks


def front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter as a mapping ({} when there is none); bad YAML is a LoadError."""
    m = _FRONT_MATTER.match(text)
    if m is None:
        return {}
    try:
        data = yaml.safe_load(m.group(0)[4:-4])
    except yaml.YAMLError as err:
        raise LoadError(f"front matter is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LoadError("front matter must be a mapping of keys to values")
    return {str(k): v for k, v in data.items()}


class MarkdownLoader:
    formats: tuple[str, ...] = ("markdown",)

    def load(self, data: bytes, name: str) -> ParsedDocument:
        text = decode_text(data)
        properties = front_matter(text)
        title, blocks = parse_markdown(text)
        if not blocks:
            raise LoadError("no text in Markdown document")
        fm_title = properties.get("title")
        return ParsedDocument(
            title=title or (str(fm_title) if fm_title else "") or PurePath(name).stem, format="markdown",
            blocks=blocks, properties=properties,
        )
