"""Catalog contract: the SQLite adapter and the PostgreSQL adapter (a real server) behave the same.

The write journal (begin/commit/abandon/delete), source sets, ordering, transactions, writer claims
between two catalog objects and across a SIGKILLed process, and the dump/restore the exit bundle uses.
Also the factory (``build_catalog``) and the settings that choose the adapter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.catalog import CatalogError
from ingest.catalog_factory import build_catalog
from ingest.catalog_pg import PostgresCatalog, head_revision
from ingest.state import SqliteCatalog
from vraagbaak_core.ports import Catalog
from vraagbaak_core.settings import CatalogSettings, ConfigError, IngestSettings, Settings, load_settings
from vraagbaak_core.types import DocRecord, SourceSet

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture()
def pg_url(pg_server: Any) -> Iterator[str]:
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ``catalog.url`` naming one empty catalog of each backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'state.sqlite'}"


@pytest.fixture()
def open_catalog(catalog_url: str, tmp_path: Path) -> Iterator[Callable[[], Catalog]]:
    """Opens another catalog object on the same catalog (another connection, as another process would)."""
    made: list[Catalog] = []

    def make() -> Catalog:
        c = build_catalog(_settings(tmp_path, catalog_url))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture()
def catalog(open_catalog: Callable[[], Catalog]) -> Catalog:
    return open_catalog()


def _settings(tmp: Path, url: str) -> Settings:
    return Settings(data_dir=tmp, catalog=CatalogSettings(url=url),  # type: ignore[arg-type]
                    ingest=IngestSettings(state_path=tmp / "default-state.sqlite"))


def _committed(doc_id: str, source: str, **kw: Any) -> DocRecord:
    base: dict[str, Any] = dict(
        doc_id=doc_id, source=source, root="/srv/beleid", sha256="ab" * 32, labels_fp="fp1", title="Handhygiëne",
        format="pdf", groups=("zorg", "ok"), classification="intern", language="nl", size=1234,
        chunk_ids=["c1", "c2"], ingested_at="2026-12-01T10:00:00+00:00", source_set="beleid",
        control={"status": "vastgesteld", "version": "2", "lifecycle": "current"},
    )
    return DocRecord(**(base | kw))


def _write(cat: Catalog, rec: DocRecord, stale: list[str] | None = None) -> None:
    cat.begin_write(rec.doc_id, rec.source, rec.root, rec.chunk_ids, rec.source_set)
    cat.commit_write(rec, stale or [])


# ------------------------------------------------------------------ the contract


def test_is_a_catalog(catalog: Catalog) -> None:
    assert isinstance(catalog, Catalog)
    assert "password" not in catalog.location and catalog.location
    assert catalog.schema_version() in ("2", head_revision())


def test_write_protocol_round_trip(catalog: Catalog) -> None:
    catalog.begin_write("d1", "a.pdf", "/srv/beleid", ["c1", "c2"], "beleid")
    (w,) = catalog.unfinished()
    assert (w.doc_id, w.status, w.pending_ids, w.committed) == ("d1", "writing", ["c1", "c2"], False)
    rec = _committed("d1", "a.pdf")
    catalog.commit_write(rec, ["old1"])
    got = catalog.get("d1")
    assert got == DocRecord(**{**rec.__dict__, "stale_ids": ["old1"], "status": "done", "pending_ids": None})
    assert [r.doc_id for r in catalog.unfinished()] == ["d1"]  # stale ids left to delete
    catalog.clear_stale("d1")
    assert catalog.unfinished() == [] and catalog.get("d1") == rec
    assert catalog.get("nope") is None


def test_abandon_write_restores_the_committed_version(catalog: Catalog) -> None:
    rec = _committed("d1", "a.pdf")
    _write(catalog, rec)
    catalog.begin_write("d1", "a.pdf", rec.root, ["c3"], "beleid")  # a new version, killed mid-write
    catalog.begin_write("d2", "b.pdf", rec.root, ["c9"], "beleid")  # a new document, killed mid-write
    assert {r.doc_id for r in catalog.unfinished()} == {"d1", "d2"}
    assert catalog.get("d1").pending_ids == ["c3"]  # type: ignore[union-attr]
    catalog.abandon_write("d1")
    catalog.abandon_write("d2")
    assert catalog.get("d1") == rec and catalog.get("d2") is None and catalog.unfinished() == []


def test_delete_is_journalled(catalog: Catalog) -> None:
    _write(catalog, _committed("d1", "a.pdf"))
    catalog.begin_delete("d1")
    assert [(r.doc_id, r.status) for r in catalog.unfinished()] == [("d1", "deleting")]
    catalog.remove("d1")
    assert catalog.get("d1") is None and catalog.all() == []


def test_source_sets_and_lookups(catalog: Catalog) -> None:
    catalog.bind_source_set("beleid", "/srv/beleid", "2026-12-01")
    catalog.bind_source_set("Atlas", "/srv/atlas")
    assert catalog.source_sets() == [SourceSet("Atlas", "/srv/atlas"), SourceSet("beleid", "/srv/beleid")]
    assert catalog.source_set("beleid") == SourceSet("beleid", "/srv/beleid")
    assert catalog.source_set_at("/srv/atlas") == SourceSet("Atlas", "/srv/atlas")
    assert catalog.source_set("x") is None and catalog.source_set_at("/x") is None
    for i, src in enumerate(["b.pdf", "Z.pdf", "a/é.pdf", "a.pdf"]):  # byte order: Z < a < a/é < b
        _write(catalog, _committed(f"d{i}", src))
    _write(catalog, _committed("u1", "uploads/x.txt", root="uploads", source_set="uploads"))
    assert [r.source for r in catalog.in_source_set("beleid")] == ["Z.pdf", "a.pdf", "a/é.pdf", "b.pdf"]
    assert [r.source for r in catalog.all()] == ["Z.pdf", "a.pdf", "a/é.pdf", "b.pdf", "uploads/x.txt"]
    assert catalog.find("beleid", "a/é.pdf").doc_id == "d2"  # type: ignore[union-attr]
    assert catalog.find("beleid", "uploads/x.txt") is None
    assert {r.doc_id for r in catalog.in_roots(["uploads"])} == {"u1"}
    assert catalog.in_roots([]) == []
    # moving a set to another folder moves its documents, ids kept
    catalog.bind_source_set("beleid", "/mnt/nieuw")
    assert catalog.source_set("beleid") == SourceSet("beleid", "/mnt/nieuw")
    assert {r.root for r in catalog.in_source_set("beleid")} == {"/mnt/nieuw"}
    assert len(catalog.in_roots(["/mnt/nieuw"])) == 4


def test_transaction_commits_together_or_not_at_all(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError, match="boom"), catalog.transaction():
        catalog.begin_write("d1", "a.pdf", "/r", ["c1"], "s")
        with catalog.transaction():  # a nested one joins the outer transaction
            catalog.begin_write("d2", "b.pdf", "/r", ["c2"], "s")
        raise RuntimeError("boom")
    assert catalog.all() == []
    with catalog.transaction():
        catalog.begin_write("d1", "a.pdf", "/r", ["c1"], "s")
        catalog.begin_write("d2", "b.pdf", "/r", ["c2"], "s")
    assert len(catalog.all()) == 2


def test_set_lifecycle_merges_into_control(catalog: Catalog) -> None:
    _write(catalog, _committed("d1", "a.pdf"))
    catalog.set_lifecycle("d1", "superseded")
    catalog.set_lifecycle("absent", "superseded")  # no row: nothing happens
    assert catalog.get("d1").control == {  # type: ignore[union-attr]
        "status": "vastgesteld", "version": "2", "lifecycle": "superseded", "until": None}
    catalog.set_lifecycle("d1", "current", "2099-01-01")  # a newer version takes over on that day
    assert catalog.get("d1").control == {  # type: ignore[union-attr]
        "status": "vastgesteld", "version": "2", "lifecycle": "current", "until": "2099-01-01"}


def test_two_catalog_objects_see_each_other(open_catalog: Callable[[], Catalog]) -> None:
    a, b = open_catalog(), open_catalog()
    _write(a, _committed("d1", "a.pdf"))
    assert b.get("d1") == a.get("d1")


def test_claims_between_two_writers(open_catalog: Callable[[], Catalog]) -> None:
    a, b = open_catalog(), open_catalog()
    assert a.try_claim("d1")
    assert a.try_claim("d1")  # its own claim again
    assert not b.try_claim("d1")
    assert b.try_claim("d2") and not a.try_claim("d2")
    a.release("d1")
    a.release("d1")  # released twice: no-op
    assert b.try_claim("d1")
    b.release("nothing")
    b.close()  # closing gives up every claim
    assert a.try_claim("d1") and a.try_claim("d2")


_CLAIMER = """
import sys, time
from pathlib import Path
from ingest.catalog_factory import build_catalog
from vraagbaak_core.settings import CatalogSettings, IngestSettings, Settings
tmp = Path(sys.argv[2])
cat = build_catalog(Settings(data_dir=tmp, catalog=CatalogSettings(url=sys.argv[1]),
                             ingest=IngestSettings(state_path=tmp / "default-state.sqlite")))
assert cat.try_claim("d1")
print("claimed", flush=True)
time.sleep(600)
"""


def test_claim_of_a_killed_process_is_taken_over(catalog: Catalog, catalog_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    proc = subprocess.Popen([sys.executable, "-c", _CLAIMER, catalog_url, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
        assert not catalog.try_claim("d1")  # a live process holds it
        assert catalog.try_claim("d2")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    catalog.release("d2")
    assert _eventually(lambda: catalog.try_claim("d1"))  # its writer is dead: the claim is free


def _eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """PostgreSQL ends a killed client's session (and its locks) once it sees the socket close."""
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_dump_restore_round_trip(open_catalog: Callable[[], Catalog]) -> None:
    a = open_catalog()
    a.bind_source_set("beleid", "/srv/beleid", "2026-12-01")
    _write(a, _committed("d1", "a.pdf"), ["s1"])
    _write(a, _committed("d2", "b.pdf", groups=(), control={}, classification="openbaar"))
    a.begin_write("d3", "c.pdf", "/srv/beleid", ["p1"], "beleid")
    dump = a.dump()
    assert dump["format"] == "vraagbaak-catalog" and dump["tables"]["documents"]["rows"]
    with pytest.raises(CatalogError, match="empty catalog"):
        a.restore(dump)
    for doc_id in ("d1", "d2", "d3"):
        a.remove(doc_id)
    with pytest.raises(CatalogError, match="empty catalog"):  # a source set is still there
        a.restore(dump)


def test_dump_restores_into_either_backend(tmp_path: Path, pg_url: str) -> None:
    """What one adapter dumps, the other restores, and dumps again the same (the bundle's catalog.json)."""
    lite = SqliteCatalog(tmp_path / "a.sqlite")
    pg = PostgresCatalog(pg_url)
    lite2 = SqliteCatalog(tmp_path / "b.sqlite")
    try:
        lite.bind_source_set("beleid", "/srv/beleid", "2026-12-01")
        lite.bind_source_set("uploads-x", "/srv/x")
        _write(lite, _committed("d1", "a.pdf"), ["s1"])
        _write(lite, _committed("d2", "Ä.pdf", groups=(), control={}))
        lite.begin_write("d3", "c.pdf", "/srv/beleid", ["p1"], "beleid")
        first = lite.dump()
        assert pg.restore(first) == 5
        second = pg.dump()
        assert second["tables"] == first["tables"] and second["backend"] == "postgresql"
        assert lite2.restore(second) == 5
        assert lite2.dump()["tables"] == first["tables"]
        assert pg.all() == lite.all() and pg.unfinished() == lite.unfinished()
    finally:
        lite.close()
        pg.close()
        lite2.close()


# ------------------------------------------------------------------ PostgreSQL migrations


def test_pg_migrations_run_once_for_replicas_opening_together(pg_url: str) -> None:
    """Alembic migrations applied on open, serialised: four replicas starting at once all open it."""
    opened: list[Catalog] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(PostgresCatalog(pg_url))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(opened) == 4
    assert opened[0].dump()["schema_version"] == head_revision() == "0003"
    for c in opened:
        c.close()


def test_pg_catalog_of_an_older_version_is_migrated_on_open_keeping_its_rows(pg_url: str) -> None:
    from ingest.catalog_pg import upgrade

    assert upgrade(pg_url, revision="0001") == "0001"  # as an older Vraagbaak left it
    old = PostgresCatalog(pg_url, migrate=False)
    _write(old, _committed("d1", "a.pdf"))
    old.close()
    new = PostgresCatalog(pg_url)  # opening migrates: 0002 and 0003 add the quarantine and feedback
    assert new.dump()["schema_version"] == head_revision()
    assert new.get("d1") == _committed("d1", "a.pdf")
    new.close()
    from ingest.quarantine_pg import PostgresQuarantine

    q = PostgresQuarantine(pg_url)
    assert q.list() == []
    q.close()


# ------------------------------------------------------------------ factory and settings


def test_factory_picks_the_adapter(tmp_path: Path, pg_url: str) -> None:
    s = Settings(data_dir=tmp_path, ingest=IngestSettings(state_path=tmp_path / "state.sqlite"))
    c = build_catalog(s)  # no catalog.url: the SQLite state file, as before the port
    assert isinstance(c, SqliteCatalog) and c.location == str(tmp_path / "state.sqlite")
    c.close()
    c = build_catalog(_settings(tmp_path, pg_url))
    assert isinstance(c, PostgresCatalog) and c.location.startswith("postgresql://127.0.0.1:")
    c.close()


def test_factory_takes_the_password_from_a_file(tmp_path: Path, pg_url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(pg_url)
    (tmp_path / "pw").write_text(f"{parts.password}\n")
    bare = f"postgresql://{parts.username}@{parts.hostname}:{parts.port}{parts.path}"
    s = Settings(data_dir=tmp_path, catalog=CatalogSettings(url=bare, password_file=tmp_path / "pw"))  # type: ignore[arg-type]
    c = build_catalog(s)
    assert c.source_sets() == []
    c.close()
    (tmp_path / "pw").write_text("wrong-password")
    with pytest.raises(CatalogError, match="unavailable"):
        build_catalog(s)


def test_settings_refuse_a_password_in_the_file_and_unknown_schemes(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("catalog:\n  url: postgresql://vb:geheim@db:5432/vraagbaak\n")
    with pytest.raises(ConfigError, match="VRAAGBAAK_CATALOG__URL"):
        load_settings(cfg)
    cfg.write_text("catalog:\n  url: postgresql://vb@db:5432/vraagbaak\n  password_file: /run/secrets/pg\n")
    s = load_settings(cfg)
    assert s.catalog.url is not None and "geheim" not in repr(s)
    cfg.write_text("catalog:\n  url: mysql://db/vraagbaak\n")
    with pytest.raises(ConfigError, match="catalog.url"):
        load_settings(cfg)


def test_catalog_host_is_on_the_egress_allowlist(tmp_path: Path) -> None:
    from vraagbaak_core.egress import configured_endpoints

    s = Settings(data_dir=tmp_path, catalog=CatalogSettings(url="postgresql://vb:pw@catalog.intern:6432/vb"))  # type: ignore[arg-type]
    eps = [e for e in configured_endpoints(s) if e.name == "catalog.url"]
    assert len(eps) == 1 and "pw" not in repr(eps[0])


def test_cli_catalog_upgrade_and_status(tmp_path: Path, pg_url: str) -> None:
    """``vraagbaak catalog upgrade`` migrates a fresh PostgreSQL catalog; the URL comes from the environment."""
    import json

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\naudit:\n  path: {tmp_path / 'audit.jsonl'}\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "VRAAGBAAK_CATALOG__URL": pg_url}
    vb = [sys.executable, "-c", "from serving.cli.main import main; main()"]
    r = subprocess.run([*vb, "catalog", "upgrade", "--config", str(cfg), "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["backend"] == "postgresql" and out["schema_version"] == head_revision()
    assert "password" not in r.stdout and pg_url.split("@")[0] not in r.stdout
    r = subprocess.run([*vb, "catalog", "status", "--config", str(cfg), "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) | {"location": ""} == {
        "location": "", "backend": "postgresql", "schema_version": head_revision(), "documents": 0, "source_sets": 0,
        "unfinished": 0}
    bad = {**env, "VRAAGBAAK_CATALOG__URL": pg_url.replace("@", "x@", 1)}  # a wrong password
    r = subprocess.run([*vb, "catalog", "upgrade", "--config", str(cfg)], capture_output=True, text=True,
                       env=bad, timeout=120)
    assert r.returncode == 1 and "unavailable" in r.stderr


def _old_sqlite_dump(path: Path) -> dict[str, Any]:
    """What bundles written before the ports held per database: schema, user_version, raw rows."""
    import sqlite3

    db = sqlite3.connect(path)
    tables = {}
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall():
        cur = db.execute(f'SELECT * FROM "{name}" ORDER BY rowid')
        tables[name] = {"columns": [d[0] for d in cur.description], "rows": [list(r) for r in cur.fetchall()]}
    out = {"user_version": db.execute("PRAGMA user_version").fetchone()[0], "schema": [], "tables": tables}
    db.close()
    return out


def test_bundles_from_before_the_ports_still_import(tmp_path: Path) -> None:
    from ingest.bundle import catalog_dump, feedback_dump, quarantine_dump
    from ingest.quarantine import QuarantineStore
    from serving.staff.feedback.store import FeedbackStore

    lite = SqliteCatalog(tmp_path / "state.sqlite")
    lite.bind_source_set("beleid", "/srv/beleid")
    _write(lite, _committed("d1", "a.pdf"), ["s1"])
    q = QuarantineStore(tmp_path / "q.sqlite")
    q.add(doc_id="d9", source_set="beleid", source="brief.md", sha256="x", reason="r", counts={"bsn": 2})
    fb = FeedbackStore(tmp_path / "fb.sqlite")
    fb.record_answer(_receipt_for_old_bundle())
    fb.add("a1", "u1", "up")
    new = (lite.dump(), q.dump(), fb.dump())
    old = [_old_sqlite_dump(tmp_path / n) for n in ("state.sqlite", "q.sqlite", "fb.sqlite")]
    for c in (lite, q, fb):
        c.close()
    converted = (catalog_dump(old[0]), quarantine_dump(old[1]), feedback_dump(old[2]))
    lite2, q2, fb2 = (SqliteCatalog(tmp_path / "2.sqlite"), QuarantineStore(tmp_path / "q2.sqlite"),
                      FeedbackStore(tmp_path / "fb2.sqlite"))
    for target, dump, want in zip((lite2, q2, fb2), converted, new, strict=True):
        target.restore(dump)
        assert target.dump()["tables"] == want["tables"]
        target.close()


def _receipt_for_old_bundle() -> Any:
    from vraagbaak_core.types import AnswerReceipt, CitedDocument

    return AnswerReceipt("a1", "u1", (CitedDocument("d1", "ab", "c1"),), question="q", abstained=True)
