"""Proof for auditors: models prepare → ingest → chat in a network namespace with only loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

pytestmark = pytest.mark.netns


def _netns_works() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (iproute2) is not installed"
    probe = subprocess.run([str(ROOT / "scripts" / "netns-run"), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"network namespaces are not permitted here: {probe.stderr.strip()}"
    return None


def test_whole_path_runs_with_loopback_only(tmp_path: Path) -> None:
    reason = _netns_works()
    if reason:
        pytest.skip(reason)
    env = {
        **os.environ,
        "VENV": str(Path(sys.executable).parent.parent),
        "OUT_DIR": str(tmp_path),
        "VRAAGBAAK_DATA_DIR": str(tmp_path / "data"),
        "VRAAGBAAK_STORE__PATH": str(tmp_path / "data" / "qdrant-edge"),
        "VRAAGBAAK_INGEST__STATE_PATH": str(tmp_path / "data" / "state.sqlite"),
        "VRAAGBAAK_AUDIT__PATH": str(tmp_path / "data" / "audit.jsonl"),
        "VRAAGBAAK_SERVER__PORT": "18765",
        "VRAAGBAAK_GENERATOR__MAX_TOKENS": "32",
    }
    proc = subprocess.run(
        [str(ROOT / "scripts" / "netns-run"), str(ROOT / "tests" / "netns_e2e.sh")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "interfaces.txt").read_text().split() == ["lo"]
    ingest = json.loads((tmp_path / "ingest.json").read_text())
    assert ingest["counts"]["failed"] == 0 and ingest["counts"]["added"] == 7
    ask = json.loads((tmp_path / "ask.json").read_text())
    assert ask["sources"][0]["title"] == "Protocol handhygiëne"
    chat = json.loads((tmp_path / "chat.json").read_text())
    assert chat["choices"][0]["message"]["sources"][0]["title"] == "Bezoekregeling Ziekenhuis De Linde"
    assert "chain intact" in (tmp_path / "verify.txt").read_text()
    events = [json.loads(line)["event_type"] for line in (tmp_path / "data" / "audit.jsonl").open()]
    assert events.count("chat.question") == 2 and "egress.refused" not in events
