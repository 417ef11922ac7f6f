"""ONNX Runtime's own telemetry never starts in a Vraagbaak process (nothing leaves; auditors' check).

ONNX Runtime 1.32's Linux wheel carries Microsoft's 1DS client. Once imported without
``ORT_DISABLE_TELEMETRY=1`` it writes a session file, ``$TMPDIR/.ses``, and about half a minute later
resolves mobile.events.data.microsoft.com to upload events (seen under strace here: DNS queries for that
name from ONNX Runtime's threads). The switch is read at import only. A fresh-clone run saw the session
file in the API's temporary directory (``test_anonymous_30_mb_upload_gets_401_and_nothing_is_spooled``).

The session file is the probe: it is written when the client starts, before any upload. Each case runs in
a child Python with a fresh ``TMPDIR`` and without the switch in its environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

E5_DIR = ROOT / ".models" / "multilingual-e5-small-q4-fp32"
# ONNX Runtime keeps its telemetry off where one of these is set (the names are in its library); a
# hospital's process has none of them, so the children here run without them (CI sets CI=true: the
# first fresh-clone run of this test saw no session file there)
CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TRAVIS", "CIRCLECI", "BUILDKITE",
              "TEAMCITY_VERSION", "CODEBUILD_BUILD_ID", "BITBUCKET_BUILD_NUMBER", "AZURE")


def _child(code: str, tmp_path: Path) -> list[str]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY" and k not in CI_MARKERS}
    env.update(TMPDIR=str(tmpdir), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return sorted(p.name for p in tmpdir.iterdir())


@pytest.fixture(autouse=True)
def _model() -> None:
    if not (E5_DIR / "onnx" / "model_int8.onnx").is_file():
        pytest.fail(f"{E5_DIR} is not prepared: run `make models`")


def test_onnxruntime_imported_plainly_starts_its_telemetry(tmp_path: Path) -> None:
    """The probe sees it: a plain import and a session write the session file."""
    code = ("import onnxruntime as ort; "
            f"ort.InferenceSession({str(E5_DIR / 'onnx' / 'model_int8.onnx')!r}, providers=['CPUExecutionProvider'])")
    assert ".ses" in _child(code, tmp_path)


def test_the_onnx_embedder_starts_no_telemetry(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "from retrieval.embedders import build_embedder\n"
        "from vraagbaak_core.settings import EmbedderSettings\n"
        f"e = build_embedder(EmbedderSettings(backend='onnx', model={str(E5_DIR)!r}))\n"
        "assert len(e.embed_documents(['De infuuslijn wordt elke 96 uur vervangen.'])[0]) == e.dimension\n"
        "assert len(e.embed_query('Hoe vaak vervang ik de infuuslijn?')) == e.dimension\n"
        "assert os.environ['ORT_DISABLE_TELEMETRY'] == '1'\n"
    )
    assert _child(code, tmp_path) == []


def test_an_earlier_plain_import_is_refused(tmp_path: Path) -> None:
    code = (
        "import onnxruntime\n"
        "from vraagbaak_core.egress import import_onnxruntime\n"
        "try:\n"
        "    import_onnxruntime()\n"
        "except RuntimeError as err:\n"
        "    assert 'ORT_DISABLE_TELEMETRY' in str(err)\n"
        "else:\n"
        "    raise SystemExit('not refused')\n"
    )
    _child(code, tmp_path)


def test_the_startup_guard_switches_it_off() -> None:
    from vraagbaak_core.egress import OFFLINE_ENV

    assert OFFLINE_ENV["ORT_DISABLE_TELEMETRY"] == "1"
