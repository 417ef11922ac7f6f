"""Two processes on one catalog: recovery never touches a document another live process is writing.

Process A (a child) ingests a folder into its own Qdrant Edge shard against the shared catalog and
is held mid-write by the Ingestor's checkpoint hook, right after its chunks were upserted (catalog
row ``writing``, new points in the store, nothing committed). Process B (this test) opens the same
catalog with its own Edge shard: its recovery, its erasure and its ingest of the same document must
all leave A's document alone. Then A is SIGKILLed, and a recovery run on A's shard (the Edge flock
is free once A is dead) repairs it: the orphan points are deleted and the catalog row is gone.

Why two shards: Qdrant Edge is single-writer per shard and no Qdrant server binary is available, so
two processes cannot share one store here. The lock decisions are all made on the shared catalog
(PostgreSQL advisory locks; SQLite owner rows), which is what this test exercises across processes;
the store effects are checked on A's shard after A is gone. Both catalog backends run, PostgreSQL
against a real server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_support import make_ingestor

from ingest.errors import DocumentBusy
from ingest.manifest import Labels
from ingest.pipeline import Ingestor, doc_id_for
from retrieval.stores.edge import EdgeStore

ROOT = Path(__file__).resolve().parents[1]
ZORG = Labels(groups=("zorg",))

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ingest_support import make_ingestor
    from ingest.manifest import Labels

    def main():
        tmp, docs, url, marker = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] or None, Path(sys.argv[4])
        ing = make_ingestor(tmp, catalog_url=url)

        def checkpoint(name):
            if name == "upserted":  # the chunks are in the store, the catalog says 'writing': hold here
                marker.write_text("held")
                time.sleep(600)

        ing.on_checkpoint = checkpoint
        ing.ingest_paths([docs], Labels(groups=("zorg",)))

    if __name__ == "__main__":  # the parser workers are spawned and import this file again
        main()
    """
)


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``catalog.url`` both processes open."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared-state.sqlite'}"
        return
    server: Any = request.getfixturevalue("pg_server")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"writer exited ({proc.returncode}) before it was held:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("writer was not held in time")
        time.sleep(0.1)


def test_recovery_leaves_a_live_writers_document_alone_and_repairs_it_after_a_kill(
    tmp_path: Path, shared_catalog: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handhygiene.txt").write_text(
        "Handhygiëne: desinfecteer de handen voor en na elk patiëntcontact. " * 20, encoding="utf-8"
    )
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    marker = tmp_path / "held"
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    proc = subprocess.Popen([sys.executable, str(script), str(a_dir), str(docs), shared_catalog, str(marker)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    doc_id = doc_id_for(str(docs.resolve()), "handhygiene.txt")
    b: Ingestor | None = None
    try:
        _wait_for(marker, proc)
        # B opens the same catalog (its constructor runs recovery): A's document is left as it is
        b = make_ingestor(b_dir, catalog_url=shared_catalog)
        (held,) = b.state.unfinished()
        assert (held.doc_id, held.status, held.committed) == (doc_id, "writing", False)
        assert held.pending_ids
        assert b.recover() == 0
        assert b.state.get(doc_id) == held
        with pytest.raises(DocumentBusy, match="another process"):
            b.erase_document(doc_id)
        assert b.state.get(doc_id) == held
        # B ingesting the same folder does not write A's document either
        report = b.ingest_paths([docs], ZORG)
        (res,) = report.results
        assert res.status == "failed" and "another process" in (res.reason or "")
        assert b.state.get(doc_id) == held and b.store.count(doc_id) == 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if b is not None:
            b.close()
            b.store.close()
            b.state.close()

    # A is dead: its points are orphans in its shard, its catalog row is left 'writing'
    store = EdgeStore(a_dir / "edge")
    orphans = store.count(doc_id)
    store.close()
    assert orphans == len(held.pending_ids or [])
    # a recovery on A's shard (the Ingestor's constructor runs it) repairs the document
    deadline = time.monotonic() + 15  # PostgreSQL ends the killed session once it sees the socket close
    while True:
        c = make_ingestor(a_dir, catalog_url=shared_catalog)
        if c.state.get(doc_id) is None or time.monotonic() > deadline:
            break
        c.store.close()
        c.state.close()
        time.sleep(0.2)
    try:
        assert c.state.get(doc_id) is None and c.state.unfinished() == []
        assert c.store.count(doc_id) == 0
        report = c.ingest_paths([docs], ZORG)  # and the document can be ingested again
        assert [r.status for r in report.results] == ["added"]
        assert c.store.count(doc_id) == len(c.state.get(doc_id).chunk_ids) > 0  # type: ignore[union-attr]
    finally:
        c.close()
        c.store.close()
        c.state.close()


def test_prune_leaves_a_document_another_process_writes_and_the_run_goes_on(tmp_path: Path) -> None:
    """A prune that would erase a claimed document reports it as failed, keeps it, and erases the rest."""
    from ingest.state import SqliteCatalog

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (docs / name).write_text(f"Protocol {name}: handen wassen voor elk patiëntcontact. " * 5, encoding="utf-8")
    ing = make_ingestor(tmp_path / "x", prune_max_fraction=1.0)
    try:
        assert [r.status for r in ing.ingest_paths([docs], ZORG).results] == ["added"] * 4
        root = str(docs.resolve())
        busy, gone = doc_id_for(root, "a.txt"), doc_id_for(root, "b.txt")
        (docs / "a.txt").unlink()
        (docs / "b.txt").unlink()
        other = SqliteCatalog(ing.state.location)  # another writer on the same catalog (alive: this process)
        assert other.try_claim(busy)
        report = ing.ingest_paths([docs], ZORG, prune=True)
        by_doc = {r.doc_id: r for r in report.results}
        assert by_doc[busy].status == "failed" and "another process" in (by_doc[busy].reason or "")
        assert by_doc[gone].status == "deleted"
        assert ing.state.get(busy) is not None and ing.store.count(busy) > 0
        assert ing.state.get(gone) is None and ing.store.count(gone) == 0
        other.close()  # its claim ends: the next prune erases it
        report = ing.ingest_paths([docs], ZORG, prune=True)
        assert [r.status for r in report.results if r.doc_id == busy] == ["deleted"]
    finally:
        ing.close()
        ing.store.close()
        ing.state.close()
