"""One process per Qdrant Edge shard: an exclusive, non-blocking ``flock`` on ``<shard>.lock``.

The lock file sits next to the shard directory (so it survives the shard being rebuilt) and holds
the pid and command line of its holder, for the message a second process gets. The kernel drops
the lock when its holder exits, however it exits (SIGKILL included), so a stale file never blocks.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from vraagbaak_core.errors import StoreLocked

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

_HELD: set[str] = set()  # lock files this process holds (a second open in one process is a bug too)
_HELD_LOCK = threading.Lock()


def lock_path(shard_dir: Path) -> Path:
    return shard_dir.parent / (shard_dir.name + ".lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        return f"pid {info.get('pid')}: {info.get('command', '?')}"
    except (OSError, ValueError):
        return "unknown process"


class ShardLock:
    """Held from construction until :meth:`release`; raises :class:`StoreLocked` if taken."""

    def __init__(self, shard_dir: Path) -> None:
        self.path = lock_path(shard_dir)
        self._fd: int | None = None
        key = str(self.path.resolve() if self.path.parent.exists() else self.path)
        with _HELD_LOCK:
            if key in _HELD:
                raise StoreLocked(
                    f"the Qdrant Edge store {shard_dir} is already open in this process; share that one "
                    "store (pass it to Ingestor / build_components) instead of opening the path again"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise StoreLocked(
                        f"the Qdrant Edge store {shard_dir} is in use by another process "
                        f"({_holder(self.path)}). Only one process may open an embedded store. While "
                        "`vraagbaak serve` runs, add, replace or erase documents through its API "
                        "(POST /api/documents, DELETE /api/documents/{id}); otherwise stop that process "
                        "and run this command again."
                    ) from None
            os.ftruncate(fd, 0)
            info = {"pid": os.getpid(), "command": " ".join(sys.argv)[:300], "since": int(time.time())}
            os.write(fd, json.dumps(info).encode())
            self._fd = fd
            self._key = key
            _HELD.add(key)

    def release(self) -> None:
        with _HELD_LOCK:
            if self._fd is None:
                return
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None
            _HELD.discard(self._key)
