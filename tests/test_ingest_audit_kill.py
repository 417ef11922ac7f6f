"""CLI ingest writes each document's audit record when that document commits (issue 11, item 7).

Before: ``vraagbaak ingest`` wrote every record after the whole run, so a kill lost them all
while the committed documents were searchable. A SIGKILL after some commits must leave exactly
one success record per committed document.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from ingest.pipeline import Ingestor

    def main():
        docs = sys.argv[1]
        build = Ingestor.from_settings.__func__

        def from_settings(cls, *args, **kwargs):  # test hook: small batches, SIGKILL at the 2nd commit
            ing = build(cls, *args, **kwargs)
            ing.embed_batch = ing.store_batch = 3
            seen = {"n": 0}

            def checkpoint(name):
                if name == "committed":
                    seen["n"] += 1
                    if seen["n"] == 2:
                        os.kill(os.getpid(), signal.SIGKILL)

            ing.on_checkpoint = checkpoint
            return ing

        Ingestor.from_settings = classmethod(from_settings)
        from serving.cli import main as cli
        sys.argv = ["vraagbaak", "ingest", docs, "--groups", "zorg", "--json"]
        cli.main()

    if __name__ == "__main__":
        main()
    """
)


@pytest.mark.slow
def test_killed_cli_ingest_keeps_the_record_of_every_committed_document(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"d{i:02d}.md").write_text(f"# Document {i}\n\nKorte tekst {i} over valpreventie.", encoding="utf-8")
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", HF_HUB_OFFLINE="1",
        VRAAGBAAK_STORE__PATH=str(tmp_path / "edge"), VRAAGBAAK_INGEST__STATE_PATH=str(tmp_path / "state.sqlite"),
        VRAAGBAAK_AUDIT__PATH=str(tmp_path / "audit.jsonl"),
    )
    proc = subprocess.run([sys.executable, str(script), str(docs)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])

    db = sqlite3.connect(tmp_path / "state.sqlite")
    committed = {r[0] for r in db.execute("SELECT doc_id FROM documents WHERE sha256 != ''")}
    db.close()
    assert 0 < len(committed) < 12  # killed part-way
    audit = tmp_path / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines() if line.strip()]
    ingested = [r for r in records if r["event_type"] == "document.ingest" and r["outcome"] == "success"]
    ids = [o["id"] for r in ingested for o in r["objects"]]
    assert sorted(ids) == sorted(committed)  # one record per committed document, none for the rest
