"""The original bytes of each ingested document, kept for staff to open the cited source.

One file per document, named by its ``doc_id`` (never by its source path, so no path from a
manifest or an upload name reaches the file system), written atomically, checked against the
sha256 the parser saw, and removed when the document is erased.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_DOC_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class OriginalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, doc_id: str) -> Path:
        if not _DOC_ID.match(doc_id):
            raise ValueError(f"not a document id: {doc_id!r}")
        return self.root / doc_id[:2] / doc_id

    def exists(self, doc_id: str) -> bool:
        return self.path(doc_id).is_file()

    def put_bytes(self, doc_id: str, data: bytes, sha256: str) -> bool:
        """Store ``data`` for ``doc_id`` when it hashes to ``sha256``; False (nothing written) otherwise."""
        if hashlib.sha256(data).hexdigest() != sha256:
            return False
        self._write(doc_id, lambda f: f.write(data))
        return True

    def put_file(self, doc_id: str, src: Path | str, sha256: str) -> bool:
        """Copy ``src`` for ``doc_id``; False when the file changed since it was parsed (not stored)."""
        h = hashlib.sha256()
        with open(src, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != sha256:
            return False
        tmp = self._write(doc_id, None, src=Path(src))
        with open(tmp, "rb") as f:  # re-check what landed (the file may change while copying)
            h2 = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                h2.update(block)
        if h2.hexdigest() != sha256:
            self.delete(doc_id)
            return False
        return True

    def read(self, doc_id: str) -> bytes:
        return self.path(doc_id).read_bytes()

    def delete(self, doc_id: str) -> bool:
        """Remove the stored original; True when one was there."""
        p = self.path(doc_id)
        try:
            p.unlink()
        except FileNotFoundError:
            return False
        return True

    def _write(self, doc_id: str, writer: object, src: Path | None = None) -> Path:
        dest = self.path(doc_id)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    with open(src, "rb") as f:
                        shutil.copyfileobj(f, out)
                else:
                    assert callable(writer)
                    writer(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest
