"""``vraagbaak audit ...``: the auditors' commands (verify the log, check egress, export access history).

Mounted by ``serving.cli.main``; the egress proof itself is ``serving.audit.egress``.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import typer

from serving.audit.egress import check_egress
from vraagbaak_core.audit import AuditLog, AuditObject, AuditWriteError, FileAuditSink, Sealer
from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.egress import startup_guard
from vraagbaak_core.settings import PROJECT_ROOT, ConfigError, Settings, load_settings

app = typer.Typer(
    name="audit",
    help="For auditors: verify the access log, prove there is no egress, export access histories.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = typer.Option(None, "--config", help="settings file (default configs/default.yaml)")


def _load(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None


def _boot(config: Path | None) -> Settings:
    """Settings, then the egress guard, as every Vraagbaak process starts."""
    settings = _load(config)
    startup_guard(settings, build_audit_log(settings))
    return settings


def _actor() -> str:
    return f"os:{getpass.getuser()}"


def _access_point() -> str:
    return f"local:{socket.gethostname()}"


# --- verify ---


def _log_for(settings: Settings, path: Path | None) -> AuditLog:
    """The configured chain (file or PostgreSQL), or a given file (with the configured key)."""
    if path is None:
        return build_audit_log(settings)
    return AuditLog(path, source_id=settings.audit.source_id, store_question_text=False,
                    sealer=Sealer.from_settings(settings))


def _exists(log: AuditLog) -> None:
    if isinstance(log.sink, FileAuditSink) and not log.sink.path.is_file():
        typer.echo(f"audit log not found: {log.sink.path}", err=True)
        raise typer.Exit(2)


@app.command()
def verify(
    path: Path | None = typer.Argument(None, help="log file (default: the configured audit sink)"),
    config: Path | None = ConfigOpt,
    head: str | None = typer.Option(
        None, "--head", help="a head noted earlier (`audit head`); fails if the chain no longer holds it"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Check the whole chain; report every edited, removed, reordered, unreadable or truncated place (exit 1)."""
    settings = _boot(config)
    log = build_audit_log(settings)
    target = _log_for(settings, path)
    _exists(target)
    try:
        result = target.verify(expect_head=head)
    except AuditWriteError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    err = result.first_error
    try:
        log.audit_access(
            "audit.read",
            user_id=_actor(),
            network_access_point=_access_point(),
            outcome="success" if result.ok else "failure",
            reason="verify: " + ("chain intact" if err is None else
                                 f"{len(result.errors)} broken place(s), first line {err.line}: {err.kind}"),
            log_id=target.location,
        )
    except OSError as exc:
        typer.echo(f"cannot record this read in the audit log {log.location}: {exc}", err=True)
        raise typer.Exit(2) from None
    mode = "HMAC-SHA256 under the configured key" if result.keyed else "unkeyed SHA-256 (no audit key configured)"
    if as_json:
        out = asdict(result)
        out["location"] = target.location
        typer.echo(json.dumps(out))
    elif err is None:
        typer.echo(f"OK: {result.records} records, chain intact; head sha256 {result.head_sha256}")
        typer.echo(f"Chain: {mode}.")
        if result.open_access:
            typer.echo(f"{len(result.open_access)} question(s) with an access record but no outcome record "
                       "(the process ended mid-answer, or still answering): "
                       + ", ".join(result.open_access[:10]) + (" …" if len(result.open_access) > 10 else ""))
        typer.echo(
            "Note this head hash; pass it as --head next time to prove no records were cut off the end."
        )
    else:
        for e in result.errors:
            typer.echo(f"BROKEN at line {e.line} (record {e.index}): {e.kind}: {e.reason}")
        typer.echo(f"{len(result.errors)} broken place(s) in {result.records} records; "
                   f"{result.intact} records before the first verify; chain: {mode}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("head")
def head_cmd(
    path: Path | None = typer.Argument(None, help="log file (default: the configured audit sink)"),
    config: Path | None = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Print the chain's current head, for an auditor to note outside the system (external anchoring).

    Later, `audit verify --head HASH` proves the chain still holds that record and everything before it
    unchanged. The head is read as stored: run `audit verify` to check the chain itself.
    """
    settings = _boot(config)
    target = _log_for(settings, path)
    _exists(target)
    try:
        count, head = target.head()
    except AuditWriteError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if as_json:
        typer.echo(json.dumps({"head_sha256": head, "records": count, "location": target.location, "at": now}))
    else:
        typer.echo(f"{head}  records={count}  at={now}  log={target.location}")


# --- export ---


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date or date-time", param_hint=name) from None


@app.command()
def export(
    user: str | None = typer.Option(None, "--user", help="access history of this user id"),
    document: str | None = typer.Option(None, "--document", help="access history of this document id"),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 date or date-time (UTC if no zone)"),
    until: str | None = typer.Option(None, "--until", help="ISO 8601 date or date-time (UTC if no zone)"),
    path: Path | None = typer.Option(None, "--path", help="log file (default: the configured audit sink)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Print, as JSON lines, every record for a person or a document (EHDS art. 9 access history)."""
    if user is None and document is None:
        raise typer.BadParameter("give --user ID or --document ID", param_hint="--user/--document")
    t0, t1 = _when(since, "--since"), _when(until, "--until")
    settings = _boot(config)
    log = _log_for(settings, path)
    _exists(log)
    try:
        records = log.export(
            user=user,
            document=document,
            since=t0,
            until=t1,
            actor=_actor(),
            network_access_point=_access_point(),
        )
    except OSError as exc:
        typer.echo(f"cannot record this export in the audit log {log.location}: {exc}", err=True)
        raise typer.Exit(2) from None
    for rec in records:
        typer.echo(json.dumps(rec, ensure_ascii=False))


@app.command()
def report(
    user: str | None = typer.Option(None, "--user", help="records of this user id"),
    document: str | None = typer.Option(None, "--document", help="records that name this document id"),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 date or date-time (UTC if no zone)"),
    until: str | None = typer.Option(None, "--until", help="ISO 8601 date or date-time (UTC if no zone)"),
    address: str | None = typer.Option(None, "--address", help="an IP address or network (10.1.0.0/16)"),
    fmt: str = typer.Option("json", "--format", help="json or csv"),
    out: Path | None = typer.Option(None, "--out", help="write the report here and its signed manifest beside it"),
    config: Path | None = ConfigOpt,
) -> None:
    """The NEN 7513 access report (who was shown what, when, from where), with the chain verified.

    The same service function as ``GET /api/audit/report``; the run is itself recorded (audit.export)."""
    from vraagbaak_core.audit_report import ReportFilter, manifest, report_csv, report_json, sink_report

    if fmt not in ("json", "csv"):
        raise typer.BadParameter("json or csv", param_hint="--format")
    try:
        filt = ReportFilter(user, document, _when(since, "--since"), _when(until, "--until"), address)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--address") from None
    settings = _boot(config)
    log = _log_for(settings, None)
    _exists(log)
    subjects = [AuditObject("person", user)] if user else []
    subjects += [AuditObject("document", document)] if document else []
    try:
        log.audit_access("audit.export", user_id=_actor(), network_access_point=_access_point(), subjects=subjects)
    except OSError as exc:
        typer.echo(f"cannot record this report in the audit log {log.location}: {exc}", err=True)
        raise typer.Exit(2) from None
    rep = sink_report(log.sink, log.sealer, filt)
    body = report_csv(rep) if fmt == "csv" else report_json(rep)
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.write(b"\n")
    else:
        out.write_bytes(body)
        m = manifest(rep, body, fmt, log.sealer)
        Path(f"{out}.manifest.json").write_text(json.dumps(m, indent=1, ensure_ascii=False), encoding="utf-8")
        chain = "verifies" if rep.chain.ok else "BROKEN"
        period = "verifies" if rep.chain.period_ok else "BROKEN"
        typer.echo(f"{out}: {rep.matched} records; chain {chain} (selected period {period});"
                   f" manifest {out}.manifest.json")
    if not rep.chain.ok:
        raise typer.Exit(1)


@app.command("check-report")
def check_report(
    file: Path = typer.Argument(..., help="an exported report (its FILE.manifest.json beside it)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Check an exported report against its signed manifest (exit 1 when either was changed)."""
    from vraagbaak_core.audit_report import check_manifest

    settings = _load(config)
    mpath = Path(f"{file}.manifest.json")
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
        body = file.read_bytes()
    except (OSError, ValueError) as err:
        typer.echo(f"cannot read {file} and {mpath}: {err}", err=True)
        raise typer.Exit(2) from None
    problems = check_manifest(m, body, Sealer.from_settings(settings))
    for prob in problems:
        typer.echo(prob, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{file}: matches its manifest ({m.get('rows')} rows, signed {m.get('signature_alg')})")


@app.command()
def egress(
    config: Path | None = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    deploy_dir: Path = typer.Option(
        PROJECT_ROOT / "deploy", "--deploy-dir", help="compose/ and k8s/ to check"
    ),
    self_test: bool = typer.Option(True, "--self-test/--no-self-test", help="live test of the guard"),
) -> None:
    """Report every outbound endpoint, the offline/telemetry settings here and in deploy/, and prove
    live that the guard refuses a public address before any packet leaves. Exit 1 on any violation."""
    settings = _boot(config)
    report = check_egress(settings, config, deploy_dir, self_test)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(f"allow-list: {report.allowlist}")
        for f in report.findings:
            mark = {"ok": "ok  ", "warning": "WARN", "violation": "FAIL"}[f.status]
            typer.echo(f"[{mark}] {f.area:<10} {f.subject}: {f.detail}")
        n = sum(1 for f in report.findings if f.status == "violation")
        typer.echo("egress check passed" if report.ok else f"egress check FAILED: {n} violation(s)")
    if not report.ok:
        raise typer.Exit(1)
