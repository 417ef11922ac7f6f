"""Plain text in any common encoding (UTF-8/16, cp1252, latin-1, ...), via charset-normalizer."""

from __future__ import annotations

import codecs
from pathlib import PurePath

from charset_normalizer import from_bytes

from ingest.errors import LoadError
from vraagbaak_core.types import Block, ParsedDocument

_ALLOWED_CONTROL = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1A, 0x1B}
_MAX_CONTROL_RATIO = 0.02


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    sample = text[:20000]
    bad = sum(
        1
        for ch in sample
        if (ord(ch) < 0x20 and ord(ch) not in _ALLOWED_CONTROL) or 0x7F <= ord(ch) < 0xA0 or ch == "\ufffd"
    )
    return bad / len(sample)


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nul = sample[0::2].count(0) / (len(sample) / 2)
    odd_nul = sample[1::2].count(0) / (len(sample) / 2)
    encoding = None
    if odd_nul > 0.3 and even_nul < 0.05:
        encoding = "utf-16-le"
    elif even_nul > 0.3 and odd_nul < 0.05:
        encoding = "utf-16-be"
    if encoding is None:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


_WESTERN_EXTRA = set("‘’‚“”„–—…€•‹›™ŠšŽžŒœŸˆ˜†‡‰ƒ")


def _western(data: bytes) -> str | None:
    """cp1252 (a superset of latin-1's printable range), the usual non-UTF encoding of Dutch text,
    when every byte decodes and the non-ASCII characters are Western European letters/punctuation."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    non_ascii = [ch for ch in text[:100000] if ord(ch) > 0x7F]
    if not non_ascii:
        return text
    western = sum(1 for ch in non_ascii if ch.isalpha() or ch in _WESTERN_EXTRA or 0xA0 <= ord(ch) <= 0xBF)
    return text if western / len(non_ascii) >= 0.95 else None


def decode_text(data: bytes) -> str:
    """Decode bytes that should be text, or raise LoadError('binary data ...')."""
    if not data:
        raise LoadError("empty file (0 bytes)")
    text: str | None = None
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                raise LoadError(f"text with a {enc} byte-order mark does not decode as {enc}") from None
            break
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None and data[:4096].count(0):
        text = _utf16_without_bom(data)
    if text is None:
        text = _western(data)
    if text is None:
        best = from_bytes(data[: 1 << 20]).best()
        if best is None or best.encoding is None:
            raise LoadError("binary data, not text in any known encoding")
        try:
            text = data.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            raise LoadError(f"text does not decode as its detected encoding {best.encoding}") from None
    if _control_ratio(text) > _MAX_CONTROL_RATIO:
        raise LoadError("binary data, not text (too many control characters)")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise LoadError("no text (only whitespace)")
    return text


def split_paragraph_blocks(text: str, heading: str | None = None) -> list[Block]:
    return [Block(text=text.strip(), heading=heading)] if text.strip() else []


class TextLoader:
    formats: tuple[str, ...] = ("text",)

    def load(self, data: bytes, name: str) -> ParsedDocument:
        text = decode_text(data)
        return ParsedDocument(title=PurePath(name).stem, format="text", blocks=split_paragraph_blocks(text))
