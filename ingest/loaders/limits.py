"""Limits every loader enforces before and while parsing (the worker's rlimits are the backstop)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from ingest.errors import LoadError


@dataclass(frozen=True)
class LoaderLimits:
    max_pages: int = 2000
    max_uncompressed_mb: float = 200.0  # declared total of a DOCX/ODT's ZIP members
    max_compression_ratio: float = 200.0

    @property
    def max_uncompressed_bytes(self) -> int:
        return int(self.max_uncompressed_mb * 1024 * 1024)


def guard_zip(data: bytes, limits: LoaderLimits) -> None:
    """Reject a ZIP container whose declared expansion is a decompression bomb."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as err:
        raise LoadError(f"corrupt ZIP container: {err}") from None
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > limits.max_uncompressed_bytes:
        biggest = max(infos, key=lambda i: i.file_size)
        raise LoadError(
            f"decompression bomb: contents expand to {total / 2**20:.0f} MiB "
            f"(limit {limits.max_uncompressed_mb:.0f} MiB; largest member {biggest.filename})"
        )
    ratio = total / packed
    if ratio > limits.max_compression_ratio and total > 10 * 2**20:
        raise LoadError(
            f"decompression bomb: compression ratio {ratio:.0f}:1 "
            f"(limit {limits.max_compression_ratio:.0f}:1)"
        )
