"""Chunking in the embedder's own tokens, special tokens included, on structure before characters.

Each block of a parsed document (a page, or a section under a heading) is split on its own, so
a chunk never straddles a heading or a page and keeps both for its citation. Within a block,
langchain-text-splitters' RecursiveCharacterTextSplitter splits on paragraphs, lines, sentences,
words and only then characters.

LangChain's ``from_huggingface_tokenizer`` counts ``tokenizer.tokenize(text)``, which leaves out
the model's special tokens ([CLS] and [SEP] for BERT-style models), so its chunks of "256 tokens"
are 258 tokens of model input and get silently truncated. Here the splitter is sized to the
*content* budget (maximum minus the special tokens) and every finished chunk is checked again
with the full count; a chunk that still does not fit (tokenization at the seams can differ) is
cut further. :func:`Chunker.chunk` guarantees ``count_tokens(chunk) <= max_tokens``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from ingest.loaders.tables import is_markdown_table
from vraagbaak_core.types import Block, ParsedDocument

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ", ""]


class TokenCounter(Protocol):
    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...


class FileTokenCounter:
    """The embedder's fast tokenizer loaded from its ``tokenizer.json`` (no torch, for workers)."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()
        self._max = max_tokens

    @property
    def max_tokens(self) -> int:
        return self._max

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=True).ids)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the content tokens of ``text`` (special tokens left out)."""
        enc = self._tok.encode(text, add_special_tokens=False)
        return [(a, b) for a, b in enc.offsets]


class _SpanIndex:
    """Counts the content tokens of any substring of a text from one tokenization of the whole."""

    def __init__(self, text: str, spans: list[tuple[int, int]]) -> None:
        self.text = text
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]

    def count(self, piece: str, fallback: Callable[[str], int]) -> int:
        pos = self.text.find(piece)
        if pos < 0:
            return fallback(piece)
        end = pos + len(piece)
        return max(0, bisect_right(self.ends, end) - bisect_left(self.starts, pos))


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk's text and citation place, before ids, labels and vectors are attached."""

    index: int
    text: str
    page: int | None
    section: str | None
    tokens: int


class ChunkTooLong(AssertionError):
    pass


class Chunker:
    def __init__(self, counter: TokenCounter, chunk_tokens: int | None = None, overlap: int = 32) -> None:
        self.counter = counter
        self.max_tokens = min(chunk_tokens or counter.max_tokens, counter.max_tokens)
        self.special = counter.count_tokens("")
        content = self.max_tokens - self.special
        if content < 8:
            raise ValueError(
                f"chunk size {self.max_tokens} leaves no room next to {self.special} special tokens"
            )
        self.budget = content
        self.overlap = max(0, min(overlap, content // 2))
        count: Callable[[str], int] = lru_cache(maxsize=65536)(counter.count_tokens)
        self._count = count
        self._spans: Callable[[str], list[tuple[int, int]]] | None = getattr(counter, "token_spans", None)
        # Sentence-sized units (a quarter of a chunk) that chunks are packed from.
        self._unit_budget = max(8, content // 4)

    def _content_counter(self, block: str) -> tuple[int, Callable[[str], int]]:
        """Content tokens of ``block``, and a counter for its substrings (one tokenization if possible)."""
        if self._spans is None:
            return self._count(block) - self.special, lambda t: self._count(t) - self.special
        spans = self._spans(block)
        index = _SpanIndex(block, spans)
        return len(spans), lambda t: index.count(t, lambda u: self._count(u) - self.special)

    def _units(self, text: str, count: Callable[[str], int]) -> list[tuple[int, int, int]]:
        """(start, end, content tokens) of paragraphs, or of sentence pieces of long paragraphs."""
        # imported here: a parser worker that does not chunk (the main process does, for e5) never
        # loads langchain-core, about half of a worker's start-up
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        units: list[tuple[int, int, int]] = []
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self._unit_budget,
            chunk_overlap=0,
            length_function=count,
            separators=SEPARATORS[1:],
            keep_separator="end",
            strip_whitespace=True,
        )
        pos = 0
        for para in text.split("\n\n"):
            p_start = text.find(para, pos)
            pos = p_start + len(para)
            stripped = para.strip()
            if not stripped:
                continue
            p_start += para.find(stripped)
            n = count(stripped)
            if n <= self._unit_budget:
                units.append((p_start, p_start + len(stripped), n))
                continue
            cursor = p_start
            for piece in splitter.split_text(stripped):
                at = text.find(piece, cursor)
                if at < 0:  # the splitter does not rewrite text, so this is not expected
                    at = cursor
                units.append((at, at + len(piece), count(piece)))
                cursor = at + len(piece)
        return units

    def split_text(self, text: str) -> list[str]:
        """Pack paragraphs (or sentence pieces) greedily into chunks that fit, with overlap.

        A chunk is always a verbatim slice of ``text``.
        """
        text = text.strip()
        if not text:
            return []
        total, count = self._content_counter(text)
        if total + self.special <= self.max_tokens:
            return [text]  # chunk() checks the exact count of every chunk it returns
        spans: list[tuple[int, int]] = []
        current: list[tuple[int, int, int]] = []
        size = 0
        for unit in self._units(text, count):
            n = unit[2]
            if current and size + n + 1 > self.budget:
                spans.append((current[0][0], current[-1][1]))
                # carry trailing units of up to `overlap` tokens into the next chunk
                carried: list[tuple[int, int, int]] = []
                carried_size = 0
                for u in reversed(current):
                    if carried_size + u[2] > self.overlap or carried_size + u[2] + n + 1 > self.budget:
                        break
                    carried.insert(0, u)
                    carried_size += u[2] + 1
                current, size = carried, carried_size
            current.append(unit)
            size += n + 1
        if current:
            spans.append((current[0][0], current[-1][1]))
        out: list[str] = []
        for a, b in spans:
            chunk = text[a:b].strip()
            out.extend([chunk] if self._count(chunk) <= self.max_tokens else self._fit(chunk))
        return [c for c in out if c]

    def _fit(self, piece: str) -> list[str]:
        """Cut a piece that is still too long at the largest prefix that fits (rare)."""
        out: list[str] = []
        rest = piece.strip()
        while rest and self._count(rest) > self.max_tokens:
            lo, hi = 1, len(rest)
            while lo < hi:  # largest prefix length that fits
                mid = (lo + hi + 1) // 2
                if self._count(rest[:mid]) <= self.max_tokens:
                    lo = mid
                else:
                    hi = mid - 1
            cut = rest.rfind(" ", 0, lo)
            cut = cut if cut > lo // 2 else lo
            out.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            out.append(rest)
        return [p for p in out if p]

    def _pieces(self, text: str) -> list[str]:
        """``split_text``, except that a Markdown table is never cut inside a row.

        A block that fits is one chunk, tables and all. Otherwise the text around each table is
        split as usual and each table becomes its own chunk(s): whole rows, and when a table is
        too long for one chunk it is split between rows with its header row repeated.
        """
        if "\n|" not in f"\n{text}" or self._count(text.strip()) <= self.max_tokens:
            return self.split_text(text)
        out: list[str] = []
        prose: list[str] = []
        for para in text.split("\n\n"):
            if is_markdown_table(para):
                out.extend(self.split_text("\n\n".join(prose)))
                prose = []
                out.extend(self._table_pieces(para.strip()))
            else:
                prose.append(para)
        out.extend(self.split_text("\n\n".join(prose)))
        return out

    def _table_pieces(self, table: str) -> list[str]:
        if self._count(table) <= self.max_tokens:
            return [table]
        lines = table.split("\n")
        head = "\n".join(lines[:2])
        out: list[str] = []
        rows: list[str] = []
        for row in lines[2:]:
            candidate = "\n".join([head, *rows, row])
            if rows and self._count(candidate) > self.max_tokens:
                out.append("\n".join([head, *rows]))
                rows = []
            rows.append(row)
        if rows:
            out.append("\n".join([head, *rows]))
        return out  # a single row longer than a chunk is cut by chunk() (rare)

    def chunk(self, doc: ParsedDocument, start: int = 0) -> list[ChunkDraft]:
        """Every chunk of the document; raises ChunkTooLong rather than return one that would not fit.

        ``start``: the index of the first chunk, for a part of a document whose earlier parts (ending
        on a page boundary) gave ``start`` chunks; the parts' chunks are then the whole document's.
        """
        drafts: list[ChunkDraft] = []
        for block in _merge_tiny(doc.blocks):
            for piece in self._pieces(block.text):
                for text in [piece] if self._count(piece) <= self.max_tokens else self._fit(piece):
                    n = self._count(text)
                    if n > self.max_tokens:  # the guarantee, checked rather than assumed
                        raise ChunkTooLong(f"chunk of {n} tokens exceeds the maximum {self.max_tokens}")
                    drafts.append(ChunkDraft(start + len(drafts), text, block.page, block.heading, n))
        return drafts


_TINY_CHARS = 80


def _merge_tiny(blocks: list[Block]) -> list[Block]:
    """Fold a tiny block (a bare title or heading line) into the next block on the same page."""
    out: list[Block] = []
    carry: Block | None = None
    for block in blocks:
        if carry is not None and carry.page == block.page:
            block = Block(f"{carry.text}\n\n{block.text}", block.page, block.heading)
        elif carry is not None:
            out.append(carry)
        carry = None
        if len(block.text) < _TINY_CHARS:
            carry = block
        else:
            out.append(block)
    if carry is not None:
        out.append(carry)
    return out
