"""Quarantine contract: the SQLite store and the PostgreSQL table of the catalog (a real server)
behave the same; ``build_quarantine`` puts it next to the catalog the settings name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.quarantine import QuarantineError, QuarantineStore
from ingest.quarantine_factory import build_quarantine
from ingest.quarantine_pg import PostgresQuarantine
from vraagbaak_core.ports import Quarantine
from vraagbaak_core.settings import CatalogSettings, IngestSettings, Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    url = None
    name = None
    server: Any = None
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        name = server.create_database()
        url = server.url(name)
    yield Settings(data_dir=tmp_path, catalog=CatalogSettings(url=url),  # type: ignore[arg-type]
                   ingest=IngestSettings(state_path=tmp_path / "state.sqlite"))
    if server is not None and name is not None:
        server.drop_database(name)


@pytest.fixture()
def open_q(settings: Settings) -> Iterator[Callable[[], Quarantine]]:
    made: list[Quarantine] = []

    def make() -> Quarantine:
        q = build_quarantine(settings)
        made.append(q)
        return q

    yield make
    for q in made:
        q.close()


def _add(q: Quarantine, doc: str, sha: str, source: str = "brief.md", n: int = 3) -> Any:
    return q.add(doc_id=doc, source_set="beleid", source=source, sha256=sha, reason=f"{n} patient numbers",
                 counts={"bsn": n, "names": 1})


def test_is_a_quarantine_next_to_the_catalog(open_q: Callable[[], Quarantine], settings: Settings) -> None:
    q = open_q()
    assert isinstance(q, Quarantine)
    assert isinstance(q, PostgresQuarantine if settings.catalog.url else QuarantineStore)


def test_add_update_list_release(open_q: Callable[[], Quarantine]) -> None:
    q, other = open_q(), open_q()  # another process's view of the same quarantine
    e1 = _add(q, "d1", "s1")
    again = _add(q, "d1", "s1", n=5)  # the same content again: the same entry, updated
    assert again.id == e1.id and again.counts == {"bsn": 5, "names": 1} and again.reason == "5 patient numbers"
    e2 = _add(q, "d1", "s2", source="brief-v2.md")
    assert {e.id for e in other.list()} == {e1.id, e2.id}
    assert other.get(e1.id) == again and other.get("nope") is None
    with pytest.raises(QuarantineError, match="reason"):
        other.release(e1.id, by="os:privacy", reason="  ")
    with pytest.raises(QuarantineError, match="no quarantined"):
        other.release("nope", by="os:privacy", reason="x")
    rel = other.release(e1.id, by="os:privacy", reason="eigen brief")
    assert rel.released and rel.released_by == "os:privacy" and rel.release_reason == "eigen brief"
    assert rel.to_dict()["released"] is True
    with pytest.raises(QuarantineError, match="already released"):
        q.release(e1.id, by="os:other", reason="again")
    assert [e.id for e in q.list()] == [e2.id]
    assert {e.id for e in q.list(include_released=True)} == {e1.id, e2.id}
    assert q.released_sha256("d1") == ("s1",) and q.released_sha256("d2") == ()
    q.resolve("d1")  # open entries go, the release record stays
    assert q.list() == [] and [e.id for e in q.list(include_released=True)] == [e1.id]


def test_dump_restore(open_q: Callable[[], Quarantine], tmp_path: Path) -> None:
    q = open_q()
    e = _add(q, "d1", "s1")
    q.release(e.id, by="os:privacy", reason="ok")
    _add(q, "d2", "s2")
    dump = q.dump()
    with pytest.raises(QuarantineError, match="empty"):
        q.restore(dump)
    fresh = QuarantineStore(tmp_path / "fresh.sqlite")  # a dump from either backend restores into SQLite
    assert fresh.restore(dump) == 2
    assert fresh.dump()["tables"] == dump["tables"]
    assert fresh.list(include_released=True) == q.list(include_released=True)
    fresh.close()
