"""SIGKILL at any step of the write protocol, then a rerun: exactly the right chunks.

Checkpoints: ``upserted`` (after a store batch: new chunks partly written, state 'writing'),
``committed`` (state points at the new chunks, the old ones not yet deleted) and
``stale_deleted`` (old chunks deleted, state not yet told). All three passed when written;
CI runs the two that exercise recovery paths, to keep its time.

A child process ingests ~20 documents into Qdrant Edge with small batches and kills itself
(SIGKILL, no cleanup) at a chosen checkpoint. The rerun, here in the test process, must end
with every document's chunks present exactly once: no duplicates, no orphans, no losses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ingest_support import make_ingestor

from ingest.manifest import Labels
from ingest.pipeline import Ingestor

ROOT = Path(__file__).resolve().parents[1]
ZORG = Labels(groups=("zorg",))

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from ingest_support import make_ingestor
    from ingest.manifest import Labels

    def main():
        tmp, docs, point, nth = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        ing = make_ingestor(tmp)
        ing.embed_batch = ing.store_batch = 8
        seen = {"n": 0}

        def checkpoint(name):
            if name == point:
                seen["n"] += 1
                if seen["n"] == nth:
                    os.kill(os.getpid(), signal.SIGKILL)

        ing.on_checkpoint = checkpoint
        report = ing.ingest_paths([docs], Labels(groups=("zorg",)))
        print("finished without being killed:", report.summary())

    if __name__ == "__main__":  # the parser workers are spawned and import this file again
        main()
    """
)


def _write_docs(root: Path, version: int) -> None:
    root.mkdir(exist_ok=True)
    for i in range(20):
        n = 1 + (i % 4) * 12  # 1 to 4 chunks per document
        lines = (f"Versie {version}: regel {j} van document {i} over medicatieveiligheid." for j in range(n))
        body = " ".join(lines)
        (root / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{body}\n", encoding="utf-8")


def _run_child(tmp: Path, docs: Path, point: str, nth: int) -> None:
    script = tmp / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp), str(docs), point, str(nth)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr[-2000:])


def _assert_exact(ing: Ingestor, docs: Path, version: int) -> None:
    records = {r.source: r for r in ing.state.all()}
    assert set(records) == {p.name for p in docs.iterdir()}
    total = 0
    for source, rec in records.items():
        assert rec.status == "done" and rec.pending_ids is None and rec.stale_ids is None
        ids = ing.store.point_ids(rec.doc_id)
        assert len(ids) == len(set(ids)) == len(rec.chunk_ids), source
        assert set(ids) == set(rec.chunk_ids), source
        total += len(ids)
    assert ing.store.count() == total
    vec = ing.embedder.embed_query("medicatie").tolist()
    from vraagbaak_core.types import StoreQuery

    hits = ing.store.query(StoreQuery(mode="dense", limit=total, dense=vec))
    assert len(hits) == total and all(f"Versie {version}:" in h.chunk.text for h in hits)


@pytest.mark.slow
@pytest.mark.parametrize(("point", "nth"), [("upserted", 3)])
def test_killed_during_first_ingest_then_rerun(tmp_path: Path, point: str, nth: int) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs, 1)
    _run_child(tmp_path, docs, point, nth)
    ing = make_ingestor(tmp_path)
    try:
        report = ing.ingest_paths([docs], ZORG)
        assert report.ok and len(report.results) == 20
        assert report.added and report.chunks_embedded < 60 or point == "upserted"
        _assert_exact(ing, docs, 1)
        again = ing.ingest_paths([docs], ZORG)
        assert len(again.unchanged) == 20 and again.chunks_embedded == 0
    finally:
        ing.close()
        ing.store.close()


@pytest.mark.slow
@pytest.mark.parametrize(("point", "nth"), [("upserted", 2), ("committed", 1)])
def test_killed_while_replacing_changed_documents_then_rerun(tmp_path: Path, point: str, nth: int) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs, 1)
    ing = make_ingestor(tmp_path)
    ing.ingest_paths([docs], ZORG)
    ing.close()
    ing.store.close()
    ing.state.close()
    _write_docs(docs, 2)  # every document changes
    _run_child(tmp_path, docs, point, nth)
    ing = make_ingestor(tmp_path)
    try:
        report = ing.ingest_paths([docs], ZORG)
        assert report.ok and len(report.results) == 20
        _assert_exact(ing, docs, 2)
    finally:
        ing.close()
        ing.store.close()
