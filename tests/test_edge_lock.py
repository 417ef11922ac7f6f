"""One writer per Qdrant Edge shard (issue 11, item 19).

Before: ``EdgeStore`` took no lock of its own, and the README ran ``vraagbaak ingest`` next to
``vraagbaak serve`` on the same ``.data``. Now a second process gets ``StoreLocked`` naming the
holder and what to do instead, the CLI exits 2 with that message, and a SIGKILLed holder leaves
no stale lock and an intact shard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.stores.edge import EdgeStore
from vraagbaak_core.errors import StoreLocked

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, uuid
from pathlib import Path
from retrieval.stores.edge import EdgeStore
from vraagbaak_core.types import Chunk, StoredPoint
s = EdgeStore(Path(sys.argv[1]))
s.ensure_collection(4)
chunk = Chunk(chunk_id=str(uuid.uuid4()), doc_id="d1", index=0, text="bewaard", title="t", source="s")
s.upsert([StoredPoint(chunk=chunk, dense=[1.0, 0.0, 0.0, 0.0])])
print("ready", flush=True)
sys.stdin.read()
"""


def _env(tmp: Path) -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", HF_HUB_OFFLINE="1",
        VRAAGBAAK_STORE__PATH=str(tmp / "edge"), VRAAGBAAK_INGEST__STATE_PATH=str(tmp / "state.sqlite"),
        VRAAGBAAK_AUDIT__PATH=str(tmp / "audit.jsonl"),
    )


def test_a_second_process_gets_a_clear_error_and_the_shard_survives_a_killed_holder(tmp_path: Path) -> None:
    path = tmp_path / "edge"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=_env(tmp_path), cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        with pytest.raises(StoreLocked) as err:
            EdgeStore(path)
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and "POST /api/documents" in msg and "stop that process" in msg
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.md").write_text("# A\n\ntekst", encoding="utf-8")
        for args in (["ingest", str(docs), "--groups", "zorg"], ["serve"]):
            cli = subprocess.run(
                [sys.executable, "-m", "serving.cli.main", *args], env=_env(tmp_path), cwd=ROOT,
                capture_output=True, text=True, timeout=120,
            )
            assert cli.returncode == 2, (args, cli.stdout, cli.stderr[-2000:])
            assert "in use by another process" in cli.stderr and "POST /api/documents" in cli.stderr, cli.stderr
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    store = EdgeStore(path)  # the kernel dropped the killed holder's lock; its acknowledged write is there
    try:
        assert store.count("d1") == 1
    finally:
        store.close()


def test_one_process_opens_a_path_once(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path / "edge")
    with pytest.raises(StoreLocked, match="already open in this process"):
        EdgeStore(tmp_path / "edge")
    first.close()
    again = EdgeStore(tmp_path / "edge")  # closed: free again
    again.close()
