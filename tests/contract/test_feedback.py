"""FeedbackLog contract: the SQLite store and the PostgreSQL tables of the catalog (a real server)
behave the same; ``build_feedback`` puts the log next to the catalog the settings name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from serving.staff.feedback.factory import build_feedback
from serving.staff.feedback.store import FeedbackError, FeedbackStore, UnknownAnswer
from serving.staff.feedback.store_pg import PostgresFeedback
from vraagbaak_core.ports import FeedbackLog
from vraagbaak_core.settings import CatalogSettings, FeedbackSettings, Settings
from vraagbaak_core.types import AnswerReceipt, CitedDocument


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    url, name, server = None, None, None
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        name = server.create_database()
        url = server.url(name)
    yield Settings(data_dir=tmp_path, catalog=CatalogSettings(url=url),  # type: ignore[arg-type]
                   feedback=FeedbackSettings(path=tmp_path / "feedback.sqlite"))
    if server is not None and name is not None:
        server.drop_database(name)


@pytest.fixture()
def open_log(settings: Settings) -> Iterator[Callable[[], FeedbackLog]]:
    made: list[FeedbackLog] = []

    def make() -> FeedbackLog:
        log = build_feedback(settings)
        made.append(log)
        return log

    yield make
    for log in made:
        log.close()


def _receipt(aid: str, user: str = "u1", **kw: Any) -> AnswerReceipt:
    docs = (CitedDocument("d1", "ab12", "c1"), CitedDocument("d2", "cd34"))
    return AnswerReceipt(aid, user, docs, question="Hoe lang handen wassen?", mode="extractive", **kw)


def test_is_a_feedback_log_next_to_the_catalog(open_log: Callable[[], FeedbackLog], settings: Settings) -> None:
    log = open_log()
    assert isinstance(log, FeedbackLog)
    assert isinstance(log, PostgresFeedback if settings.catalog.url else FeedbackStore)


def test_votes_only_on_own_answers_and_export(open_log: Callable[[], FeedbackLog]) -> None:
    replica_a, replica_b = open_log(), open_log()  # two API replicas on one log
    replica_a.record_answer(_receipt("a1"))
    replica_a.record_answer(_receipt("a2", user="u2", abstained=True, answer_text="Dertig seconden."))
    fid = replica_b.add("a1", "u1", "up", "duidelijk")
    assert fid.startswith("fb-")
    with pytest.raises(UnknownAnswer):
        replica_b.add("a1", "u2", "down")  # not u2's answer
    with pytest.raises(UnknownAnswer):
        replica_b.add("nope", "u1", "down")
    with pytest.raises(ValueError, match="vote"):
        replica_b.add("a1", "u1", "meh")  # type: ignore[arg-type]
    replica_a.add("a2", "u2", "down")
    assert replica_a.counts() == replica_b.counts() == {"up": 1, "down": 1}
    rows = list(replica_a.export())
    assert [(r.answer_id, r.vote) for r in sorted(rows, key=lambda r: r.answer_id)] == [("a1", "up"), ("a2", "down")]
    up = next(r for r in rows if r.answer_id == "a1")
    assert up.comment == "duidelijk" and up.question == "Hoe lang handen wassen?" and up.mode == "extractive"
    assert up.documents == (CitedDocument("d1", "ab12", "c1"), CitedDocument("d2", "cd34"))
    assert up.to_dict()["documents"] == [{"doc_id": "d1", "version": "ab12"}, {"doc_id": "d2", "version": "cd34"}]
    assert list(replica_a.export(datetime.now(UTC) + timedelta(days=1))) == []
    assert len(list(replica_a.export(datetime.now(UTC) - timedelta(days=1)))) == 2


def test_dump_restore(open_log: Callable[[], FeedbackLog], tmp_path: Path) -> None:
    log = open_log()
    log.record_answer(_receipt("a1", abstained=True))
    log.add("a1", "u1", "down", "mist de bron")
    dump = log.dump()
    with pytest.raises(FeedbackError, match="empty"):
        log.restore(dump)
    fresh = FeedbackStore(tmp_path / "fresh.sqlite")  # either backend's dump restores into SQLite
    assert fresh.restore(dump) == 2
    assert fresh.dump()["tables"] == dump["tables"]
    assert list(fresh.export()) == list(log.export())
    fresh.close()
