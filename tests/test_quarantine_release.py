"""A quarantine release is audited before it takes effect, with the caller's real identity, and only a
privacy officer may release (issue 19 item 6). Real CLI, real SQLite quarantine, real audit chain."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.quarantine import QuarantineStore
from vraagbaak_core.audit import read_records

ME = f"os:{getpass.getuser()}"


def _cli(args: list[str]) -> Any:
    from serving.cli.main import app
    from vraagbaak_core.egress import guard_scope

    with guard_scope():
        return CliRunner().invoke(app, args)


@pytest.fixture()
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.setenv("VRAAGBAAK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VRAAGBAAK_INGEST__STATE_PATH", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("VRAAGBAAK_AUDIT__PATH", str(tmp_path / "audit" / "audit.jsonl"))
    (tmp_path / "audit").mkdir()
    store = QuarantineStore(tmp_path / "quarantine.sqlite")
    e = store.add(doc_id="doc-1", source_set="zorg", source="brief.md", sha256="ab" * 32,
                  reason="patient data", counts={"bsn": 1})
    store.close()
    return e.id, tmp_path


def _released(tmp: Path, entry_id: str) -> bool:
    store = QuarantineStore(tmp / "quarantine.sqlite")
    try:
        got = store.get(entry_id)
        assert got is not None
        return got.released
    finally:
        store.close()


def _records(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "audit" / "audit.jsonl"
    return [r for r in read_records(path) if r["event_type"] == "document.update"] if path.exists() else []


def test_a_caller_without_the_role_is_refused_and_audited(entry: tuple[str, Path]) -> None:
    entry_id, tmp = entry
    out = _cli(["quarantine", "release", entry_id, "--reason", "eigen brief"])
    assert out.exit_code == 1 and "privacy-officer" in out.output
    assert not _released(tmp, entry_id)
    (rec,) = _records(tmp)
    assert rec["outcome"] == "refused" and rec["user_id"] == ME and rec["role"] is None


def test_a_privacy_officers_release_is_audited_with_their_identity(
    entry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_id, tmp = entry
    monkeypatch.setenv("VRAAGBAAK_INGEST__PATIENT_DATA__RELEASE_USERS", f'["{ME}"]')
    out = _cli(["quarantine", "release", entry_id, "--reason", "eigen brief"])
    assert out.exit_code == 0, out.output
    assert _released(tmp, entry_id)
    (rec,) = _records(tmp)
    assert rec["outcome"] == "success" and rec["user_id"] == ME and rec["role"] == "privacy-officer"
    assert "eigen brief" in rec["outcome_reason"]


def test_no_audit_record_no_release(entry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    entry_id, tmp = entry
    monkeypatch.setenv("VRAAGBAAK_INGEST__PATIENT_DATA__RELEASE_USERS", f'["{ME}"]')
    log = tmp / "audit" / "audit.jsonl"
    log.mkdir()  # the chain cannot be written: a directory where the file should be
    out = _cli(["quarantine", "release", entry_id, "--reason", "eigen brief"])
    assert out.exit_code != 0
    assert not _released(tmp, entry_id)  # the release did not take effect
