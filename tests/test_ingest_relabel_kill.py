"""A relabel killed half-way, then the manifest reverted (issue 11, item 5).

Chunk ids depend on text, not labels, so a relabel upserts the new labels onto the committed ids.
Killed after some upserts and before the commit, the state still says ``vertrouwelijk`` while
those points say ``openbaar`` (and ``__public__``). Before the fix, reverting the manifest made the
rerun report "unchanged" and the confidential documents stayed world-readable. Recovery must put
the committed labels back.
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
from ingest.state import IngestState
from retrieval.access import access_filter
from vraagbaak_core.types import PUBLIC_GROUP, Identity, StoreQuery

ROOT = Path(__file__).resolve().parents[1]
SECRET = "groups: [zorg]\nclassification: vertrouwelijk\n"
PUBLIC = "groups: [zorg]\npublic: true\nclassification: openbaar\n"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from ingest_support import make_ingestor
    from ingest.manifest import Labels

    def main():
        tmp, docs = Path(sys.argv[1]), Path(sys.argv[2])
        ing = make_ingestor(tmp)
        ing.embed_batch = ing.store_batch = 4
        seen = {"n": 0}

        def checkpoint(name):
            if name == "upserted":
                seen["n"] += 1
                if seen["n"] == 2:  # some relabelled points written, nothing committed
                    os.kill(os.getpid(), signal.SIGKILL)

        ing.on_checkpoint = checkpoint
        report = ing.ingest_paths([docs], Labels())
        print("finished without being killed:", report.summary())

    if __name__ == "__main__":
        main()
    """
)


def _all_points(ing: object) -> list:  # type: ignore[type-arg]
    vec = ing.embedder.embed_query("medicatie").tolist()  # type: ignore[attr-defined]
    return ing.store.query(StoreQuery(mode="dense", limit=1000, dense=vec))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_killed_relabel_then_reverted_manifest_keeps_the_committed_labels(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vraagbaak.yaml").write_text(SECRET, encoding="utf-8")
    for i in range(6):
        body = " ".join(f"Regel {j} van protocol {i} over medicatie." for j in range(1 + 60 * (i % 3)))
        (docs / f"p{i}.md").write_text(f"# Protocol {i}\n\n{body}\n", encoding="utf-8")
    ing = make_ingestor(tmp_path)
    first = ing.ingest_paths([docs], Labels())
    assert len(first.added) == 6
    total = ing.store.count()
    assert total >= 8  # more than one store batch of 4 (the long documents make several 512-token chunks)
    ing.close()
    ing.store.close()
    ing.state.close()

    (docs / "vraagbaak.yaml").write_text(PUBLIC, encoding="utf-8")  # relabel ...
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), str(docs)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    (docs / "vraagbaak.yaml").write_text(SECRET, encoding="utf-8")  # ... killed, then reverted
    state = IngestState(tmp_path / "state.sqlite")
    half = [r.source for r in state.all() if r.status == "writing"]
    state.close()
    assert half, "the kill must leave a relabel half-written for this test to mean anything"

    ing = make_ingestor(tmp_path)  # recovery runs here
    try:
        committed = {r.doc_id: r for r in ing.state.all()}
        points = _all_points(ing)
        assert len(points) == total
        # after recovery every point carries the labels its state row committed (documents committed
        # before the kill are legitimately public now; the half-written ones must not be)
        wrong = [h.chunk.source for h in points
                 if (h.chunk.groups, h.chunk.classification)
                 != (committed[h.chunk.doc_id].groups, committed[h.chunk.doc_id].classification)]
        assert not wrong, wrong
        assert all(committed[h.chunk.doc_id].classification == "vertrouwelijk"
                   for h in points if h.chunk.source in half)

        rerun = ing.ingest_paths([docs], Labels())  # the manifest says vertrouwelijk again
        assert rerun.ok and len(rerun.results) == 6
        points = _all_points(ing)
        wrong = [h.chunk.source for h in points
                 if h.chunk.classification != "vertrouwelijk" or h.chunk.groups != ("zorg",)]
        assert len(points) == total and not wrong, wrong
        anyone = access_filter(Identity("bezoeker", groups=frozenset(), clearance="geheim"))
        vec = ing.embedder.embed_query("medicatie").tolist()
        assert ing.store.query(StoreQuery(mode="dense", limit=100, dense=vec, filter=anyone)) == []
        assert all(PUBLIC_GROUP not in r.groups for r in ing.state.all())
    finally:
        ing.close()
        ing.store.close()
