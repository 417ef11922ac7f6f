"""``vraagbaak audit verify|egress|export`` through typer's CliRunner, on real logs and real configs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli.audit import app
from vraagbaak_core.audit import AuditLog, read_records, verify_chain
from vraagbaak_core.egress import OFFLINE_ENV, guard_scope
from vraagbaak_core.settings import PROJECT_ROOT

runner = CliRunner()
DEFAULT = PROJECT_ROOT / "configs" / "default.yaml"


@pytest.fixture(autouse=True)
def _restore_guard() -> Iterator[None]:
    """The commands arm the (process-wide) egress guard, as every process does; undo it after."""
    with guard_scope():
        yield


@pytest.fixture
def audit_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default config, with its audit log redirected into tmp and the process set offline."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VRAAGBAAK_AUDIT__PATH", str(path))
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    return path


def fill(path: Path) -> AuditLog:
    log = AuditLog(path)
    for i in range(4):
        log.chat_question(
            user_id="u-anna" if i % 2 else "u-bram",
            role="staff",
            question=f"vraag {i}",
            documents=[(f"doc-{i}", "intern")],
            chunk_ids=[f"doc-{i}#0"],
            network_access_point="10.0.0.8",
        )
    return log


# --- verify ---


def test_verify_passes_an_intact_log_and_records_the_read(audit_path: Path) -> None:
    fill(audit_path)
    result = runner.invoke(app, ["verify", "--config", str(DEFAULT)])
    assert result.exit_code == 0, result.output
    assert "OK: 4 records, chain intact" in result.output
    last = list(read_records(audit_path))[-1]
    assert last["event_type"] == "audit.read" and last["role"] == "auditor"
    assert last["outcome"] == "success" and last["outcome_reason"] == "verify: chain intact"
    assert verify_chain(audit_path).ok


def test_verify_fails_on_an_edited_record_and_names_the_line(audit_path: Path, tmp_path: Path) -> None:
    fill(audit_path)
    copy = tmp_path / "copy.jsonl"
    lines = audit_path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"u-anna"', '"u-carla"')
    copy.write_text("".join(lines))
    result = runner.invoke(app, ["verify", str(copy), "--config", str(DEFAULT)])
    assert result.exit_code == 1
    assert "BROKEN at line 2 (record 1): edited" in result.output
    read = list(read_records(audit_path))[-1]  # the read of the copy is recorded in the configured log
    assert read["event_type"] == "audit.read" and read["outcome"] == "failure"
    assert read["objects"][0] == {"type": "audit-log", "id": str(copy.resolve())}


def test_verify_json_and_head_check(audit_path: Path) -> None:
    fill(audit_path)
    out = runner.invoke(app, ["verify", "--json", "--config", str(DEFAULT)])
    report = json.loads(out.stdout)
    assert report["ok"] is True and report["records"] == 4
    lines = audit_path.read_text().splitlines(keepends=True)
    audit_path.write_text("".join(lines[:2]))  # cut cleanly after line 2
    cut = runner.invoke(app, ["verify", "--head", report["head_sha256"], "--config", str(DEFAULT)])
    assert cut.exit_code == 1 and "missing-head" in cut.output


def test_verify_missing_log_is_an_error(audit_path: Path) -> None:
    result = runner.invoke(app, ["verify", "--config", str(DEFAULT)])
    assert result.exit_code == 2
    assert "audit log not found" in result.output


# --- export ---


def test_export_per_user_and_document(audit_path: Path) -> None:
    fill(audit_path)
    out = runner.invoke(app, ["export", "--user", "u-anna", "--config", str(DEFAULT)])
    assert out.exit_code == 0, out.output
    recs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["objects"][0]["id"] for r in recs] == ["doc-1", "doc-3"]
    doc = runner.invoke(
        app, ["export", "--document", "doc-2", "--since", "2000-01-01", "--config", str(DEFAULT)]
    )
    assert [json.loads(line)["user_id"] for line in doc.stdout.splitlines()] == ["u-bram"]
    none = runner.invoke(
        app, ["export", "--user", "u-anna", "--until", "2000-01-01", "--config", str(DEFAULT)]
    )
    assert none.exit_code == 0 and none.output == ""
    exports = [r for r in read_records(audit_path) if r["event_type"] == "audit.export"]
    assert len(exports) == 3
    assert verify_chain(audit_path).ok


def test_export_needs_a_subject_and_valid_dates(audit_path: Path) -> None:
    fill(audit_path)
    assert runner.invoke(app, ["export", "--config", str(DEFAULT)]).exit_code == 2
    bad = runner.invoke(app, ["export", "--user", "x", "--since", "gisteren", "--config", str(DEFAULT)])
    assert bad.exit_code == 2 and "not an ISO 8601" in bad.output


# --- egress ---


def test_egress_passes_on_the_default_config(audit_path: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["egress", "--json", "--config", str(DEFAULT), "--deploy-dir", str(tmp_path / "no-deploy")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["violations"] == []
    assert report["endpoints"] == []
    assert report["self_test"]["ok"] is True
    checks = {c["check"]: c for c in report["self_test"]["checks"]}
    assert "socket never connected" in checks["connect 192.0.2.1:443 refused"]["detail"]
    assert checks["loopback allowed"]["ok"]
    assert any("not found" in w["detail"] for w in report["warnings"])  # deploy/ absent: a warning only
    refused = [r for r in read_records(audit_path) if r["event_type"] == "egress.refused"]
    assert len(refused) == 4  # the self-test's refusals were audited


def test_egress_fails_on_a_public_endpoint(
    audit_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRAAGBAAK_STORE__BACKEND", "qdrant")
    monkeypatch.setenv("VRAAGBAAK_STORE__URL", "http://93.184.216.34:6333")
    result = runner.invoke(
        app,
        ["egress", "--json", "--no-self-test", "--config", str(DEFAULT), "--deploy-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [v["subject"] for v in report["violations"]] == ["store.url"]
    assert report["endpoints"][0]["class"] == "public"
    assert report["endpoints"][0]["on_allowlist"] is True  # configured, hence allowed by the guard...
    human = runner.invoke(
        app, ["egress", "--no-self-test", "--config", str(DEFAULT), "--deploy-dir", str(tmp_path)]
    )
    assert "[FAIL] endpoint   store.url: 93.184.216.34:6333 resolves to public 93.184.216.34" in human.output
    assert "egress check FAILED: 1 violation(s)" in human.output


def test_egress_forces_the_process_offline_and_fails_on_an_open_allowlist(
    audit_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("VRAAGBAAK_EGRESS__ALLOW_CIDRS", '["0.0.0.0/0"]')
    result = runner.invoke(
        app, ["egress", "--json", "--no-self-test", "--config", str(DEFAULT), "--deploy-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [v["subject"] for v in report["violations"]] == ["0.0.0.0/0"]
    ok = {f["subject"]: f["detail"] for f in report["findings"] if f["status"] == "ok"}
    assert ok["HF_HUB_OFFLINE"] == "HF_HUB_OFFLINE=1"  # the command started like every process: offline
    assert ok["runtime guard"] == "the egress guard is armed in this process"


def test_egress_self_test_fails_when_the_guard_is_off(
    audit_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRAAGBAAK_EGRESS__GUARD", "false")
    result = runner.invoke(app, ["egress", "--json", "--config", str(DEFAULT), "--deploy-dir", str(tmp_path)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    subjects = {v["subject"] for v in report["violations"]}
    assert {"egress.guard", "guard installed", "refusals audited"} <= subjects
    assert report["self_test"]["ok"] is False


COMPOSE_BAD = """
services:
  qdrant:
    image: qdrant/qdrant:v1.15.4
    environment:
      QDRANT__SERVICE__API_KEY: x
  vllm:
    image: vllm/vllm-openai:v0.30.0
    command: ["--model", "/models/m", "--enable-log-requests"]
"""

COMPOSE_GOOD = """
services:
  qdrant:
    image: qdrant/qdrant:v1.15.4
    environment: ["QDRANT__TELEMETRY_DISABLED=true"]
  vllm:
    image: vllm/vllm-openai:v0.30.0
    command: --model /models/m --no-enable-log-requests
    env_file: vllm.env
"""

K8S_BASE = {
    "kustomization.yaml": "resources: [qdrant.yaml, config.yaml]\n",
    "config.yaml": """
apiVersion: v1
kind: ConfigMap
metadata: {name: qdrant-env}
data: {QDRANT__TELEMETRY_DISABLED: "true"}
""",
    "qdrant.yaml": """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: qdrant}
spec:
  serviceName: qdrant
  selector: {matchLabels: {app: qdrant}}
  template:
    metadata: {labels: {app: qdrant}}
    spec:
      containers:
      - name: qdrant
        image: qdrant/qdrant:v1.15.4
        envFrom: [{configMapRef: {name: qdrant-env}}]
""",
}


@pytest.mark.parametrize("kubectl", [True, False], ids=["kustomize", "raw-manifests"])
def test_egress_checks_the_deploy_files(
    audit_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubectl: bool
) -> None:
    if kubectl and not shutil.which("kubectl"):
        pytest.skip("kubectl not installed (apt-get install kubectl); the raw-manifest leg still runs")
    if not kubectl:
        monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    bad = tmp_path / "bad"
    (bad / "compose").mkdir(parents=True)
    (bad / "compose" / "compose.yaml").write_text(COMPOSE_BAD)
    result = runner.invoke(
        app, ["egress", "--json", "--no-self-test", "--config", str(DEFAULT), "--deploy-dir", str(bad)]
    )
    assert result.exit_code == 1
    violations = {v["subject"]: v["detail"] for v in json.loads(result.stdout)["violations"]}
    assert set(violations) == {
        "compose:qdrant qdrant telemetry",
        "compose:vllm vllm usage stats",
        "compose:vllm vllm request logging",
        "compose:vllm vllm hub access",
    }
    assert violations["compose:vllm vllm request logging"] == "--enable-log-requests is set"

    good = tmp_path / "good"
    (good / "compose").mkdir(parents=True)
    (good / "compose" / "compose.yaml").write_text(COMPOSE_GOOD)
    (good / "compose" / "vllm.env").write_text("VLLM_NO_USAGE_STATS=1\nHF_HUB_OFFLINE=1\n")
    (good / "k8s" / "base").mkdir(parents=True)
    for name, text in K8S_BASE.items():
        (good / "k8s" / "base" / name).write_text(text)
    ok = runner.invoke(
        app, ["egress", "--json", "--no-self-test", "--config", str(DEFAULT), "--deploy-dir", str(good)]
    )
    assert ok.exit_code == 0, ok.output
    findings = [f["subject"] for f in json.loads(ok.stdout)["findings"] if f["area"] == "deploy"]
    where = "k8s/base" if kubectl else "k8s"
    assert f"k8s:{where}:StatefulSet/qdrant/qdrant qdrant telemetry" in findings
