"""The chain itself (issue 11 items 9 and 10): verification reports every broken place; the HMAC key;
external anchoring with ``audit head`` and ``audit verify --head``; the key never in a settings file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli.audit import app
from vraagbaak_core.audit import AuditLog, Sealer, record_hash, verify_chain
from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.egress import OFFLINE_ENV, guard_scope
from vraagbaak_core.settings import PROJECT_ROOT, ConfigError, load_settings

KEY = "een-geheime-sleutel-van-het-ziekenhuis-0123"
runner = CliRunner()
DEFAULT = PROJECT_ROOT / "configs" / "default.yaml"


def _fill(log: AuditLog, n: int = 6) -> None:
    for i in range(n):
        log.document_change("document.ingest", document_id=f"doc-{i}", classification="intern",
                            user_id="u-it", role="ingest")


def _lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").splitlines(keepends=True)


# --- item 9: the whole file, every broken place ---


def test_verify_reports_every_broken_place_not_just_the_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(AuditLog(path, sealer=Sealer(None)), 8)
    lines = _lines(path)
    lines[1] = "dit is geen JSON\n"  # line 2 unreadable
    rec = json.loads(lines[4])
    rec["user_id"] = "iemand-anders"  # line 5 edited
    lines[4] = json.dumps(rec, separators=(",", ":")) + "\n"
    del lines[6]  # the record that was on line 7 removed: line 7 now holds the old line 8
    path.write_text("".join(lines))
    res = verify_chain(path, sealer=Sealer(None))
    assert not res.ok
    assert [(e.line, e.kind) for e in res.errors] == [(2, "unreadable"), (5, "edited"), (7, "removed")]
    assert res.first_error == res.errors[0] and res.intact == 1 and res.records == 6


def test_cli_verify_prints_every_broken_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VRAAGBAAK_AUDIT__PATH", str(tmp_path / "own.jsonl"))
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    _fill(AuditLog(path, sealer=Sealer(None)), 5)
    lines = _lines(path)
    lines[0] = "{kapot\n"
    lines[3] = "{ook kapot\n"
    path.write_text("".join(lines))
    with guard_scope():
        out = runner.invoke(app, ["verify", str(path), "--config", str(DEFAULT)])
    assert out.exit_code == 1
    assert "BROKEN at line 1" in out.output and "BROKEN at line 4" in out.output
    assert "2 broken place(s)" in out.output


# --- item 10: HMAC ---


def test_hmac_chain_cannot_be_rebuilt_without_the_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sealer = Sealer(KEY.encode())
    _fill(AuditLog(path, sealer=sealer), 4)
    assert verify_chain(path, sealer=sealer).ok
    assert verify_chain(path, sealer=sealer).keyed
    # someone who can write the file rewrites record 2 and rebuilds the whole chain after it, unkeyed
    recs = [json.loads(x) for x in _lines(path)]
    recs[1]["objects"][0]["id"] = "doc-vervalst"
    prev = recs[0]["sha256"]
    for r in recs[1:]:
        r["prev_sha256"] = prev
        r["sha256"] = record_hash(r)
        prev = r["sha256"]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
    assert verify_chain(path, sealer=Sealer(None)).ok is False  # an unkeyed verifier: no key to check with
    res = verify_chain(path, sealer=sealer)
    assert not res.ok and {e.kind for e in res.errors} == {"edited"} and [e.line for e in res.errors] == [2, 3, 4]
    # the forger also drops the HMAC marking: then every forged record is "unkeyed"
    for r in recs:
        r.pop("chain", None)
        r.pop("key_id", None)
    prev = "0" * 64
    for r in recs:
        r["prev_sha256"] = prev
        r["sha256"] = record_hash(r)
        prev = r["sha256"]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
    res = verify_chain(path, sealer=sealer)
    assert not res.ok and {e.kind for e in res.errors} == {"unkeyed"} and len(res.errors) == 4


def test_wrong_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(AuditLog(path, sealer=Sealer(KEY.encode())), 2)
    res = verify_chain(path, sealer=Sealer(b"een-andere-sleutel-0123456789"))
    assert [e.kind for e in res.errors] == ["wrong-key", "wrong-key"]


def test_key_from_env_and_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_AUDIT__HMAC_KEY", KEY)
    s = load_settings(None, audit={"path": tmp_path / "a.jsonl"})
    log = build_audit_log(s)
    rec = log.auth_failure(reason="x", network_access_point="10.0.0.1")
    assert rec["chain"] == "hmac-sha256" and rec["key_id"] == Sealer(KEY.encode()).key_id
    monkeypatch.delenv("VRAAGBAAK_AUDIT__HMAC_KEY")
    keyfile = tmp_path / "audit.key"
    keyfile.write_text(KEY + "\n")
    s2 = load_settings(None, audit={"path": tmp_path / "a.jsonl", "hmac_key_file": keyfile})
    assert build_audit_log(s2).verify().ok


def test_key_is_refused_in_a_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "vraagbaak.yaml"
    cfg.write_text(DEFAULT.read_text() + f"\naudit:\n  hmac_key: {KEY}\n")
    with pytest.raises(ConfigError, match="must not be in a settings file"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        load_settings(None, audit={"hmac_key": "kort"})
    with pytest.raises(ConfigError, match="require_hmac"):
        load_settings(None, audit={"require_hmac": True})


# --- item 10: external anchoring ---


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VRAAGBAAK_AUDIT__PATH", str(path))
    monkeypatch.setenv("VRAAGBAAK_AUDIT__HMAC_KEY", KEY)
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    with guard_scope():
        yield path


def test_audit_head_then_verify_head(cli_env: Path) -> None:
    _fill(AuditLog(cli_env, sealer=Sealer(KEY.encode())), 3)
    out = runner.invoke(app, ["head", "--json", "--config", str(DEFAULT)])
    assert out.exit_code == 0, out.output
    noted = json.loads(out.output)
    assert noted["records"] == 3 and noted["head_sha256"] == json.loads(_lines(cli_env)[-1])["sha256"]
    # later: more records, and the noted head is still in the chain
    _fill(AuditLog(cli_env, sealer=Sealer(KEY.encode())), 2)
    ok = runner.invoke(app, ["verify", "--head", noted["head_sha256"], "--config", str(DEFAULT)])
    assert ok.exit_code == 0, ok.output
    assert "HMAC-SHA256" in ok.output
    # records cut off the end, back to before the noted head: verify --head sees it
    cli_env.write_text("".join(_lines(cli_env)[:2]))
    cut = runner.invoke(app, ["verify", "--head", noted["head_sha256"], "--config", str(DEFAULT)])
    assert cut.exit_code == 1 and "missing-head" in cut.output
