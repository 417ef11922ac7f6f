"""No patient data stored from questions (issue 19 item 2).

A staff member asks "Mevrouw J. de Vries, BSN 111222333, geboren 12-03-1961: …" (streamed and not),
then gives feedback with a comment that names her too. The answer still comes, with the notice that
Vraagbaak is not meant for patient data; afterwards the values are nowhere: not in any file under
the data directory (audit chain, feedback, catalog, store), not in any PostgreSQL table (``pg_dump``
of the catalog, feedback and audit chain database), not in the server log (every logger at DEBUG).
What was kept is the question with typed placeholders and the counts per kind.

Everything is real: uvicorn, the embedder, Qdrant Edge, deduce, PostgreSQL.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import LiveServer, make_settings
from test_audit_before_answer import pg_url

from vraagbaak_core.audit import read_records

pytest.importorskip("deduce", reason="scripts/install-deduce installs the guard's name recogniser")

KEY = "key-staff-privacy-0123456789abcdef"
QUESTION = "Mevrouw J. de Vries, BSN 111222333, geboren 12-03-1961: hoe lang moet ik de handalcohol inwrijven?"
VALUES = ("111222333", "de Vries", "12-03-1961", "1961-03-12", "12.03.1961")
# The year alone, as a number of its own: not inside a hex digest, a timestamp or an id, where "1961" turns
# up by chance (a fresh-clone CI run found it in pg_dump's output: hash chain digests, epoch seconds).
_YEAR = re.compile(rb"(?<![0-9A-Za-z.:-])1961(?![0-9A-Za-z])")


def leaked(blob: bytes) -> list[str]:
    """The question's patient values found in ``blob``."""
    found = [v for v in VALUES if v.encode() in blob]
    return found + (["1961"] if _YEAR.search(blob) else [])
DOC = ("# Handhygiëne\n\nWrijf de handalcohol minstens dertig seconden in, tot de handen droog zijn. "
       "Desinfecteer de handen voor en na elk patiëntcontact.")


@pytest.fixture(params=["embedded", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path, embedder: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    data = tmp_path / "data"
    data.mkdir()
    over: dict[str, Any] = {}
    dsn = None
    if request.param == "postgresql":
        dsn = request.getfixturevalue("pg_dsn")
        over = {"catalog": {"url": pg_url(dsn)}, "audit": {"backend": "postgresql", "dsn": dsn}}
    keys = [{"key_sha256": hash_key(KEY), "user_id": "zorg-1", "roles": ["staff"], "groups": ["zorg"]}]
    settings = make_settings(data, auth={"mode": "api-key", "api_keys": keys},
                             feedback={"store_answers": True}, **over)
    log_file = tmp_path / "server.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the most a server would ever log
    try:
        comps = build_components(settings, embedder=embedder)
        assert comps.ingestor is not None
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "handhygiene.md").write_text(DOC, encoding="utf-8")
        assert not comps.ingestor.ingest_paths([tmp_path / "docs"], Labels(groups=("zorg",))).failed
        with LiveServer(create_app(settings, comps)) as srv:
            yield {"url": srv.url, "data": data, "dsn": dsn, "log": log_file, "comps": comps}
        comps.audit.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def _ask(url: str, stream: bool) -> tuple[str, str | None, str]:
    body = {"model": "vraagbaak", "stream": stream, "messages": [{"role": "user", "content": QUESTION}]}
    hdr = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=300) as c:
        r = c.post(f"{url}/v1/chat/completions", json=body, headers=hdr)
    assert r.status_code == 200, r.text
    if not stream:
        msg = r.json()["choices"][0]["message"]
        return msg["content"], msg["privacy_notice"], r.json()["id"]
    import json

    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    return text, events[-1].get("privacy_notice"), events[-1]["id"]


def test_patient_data_from_a_question_is_stored_nowhere(api: dict[str, Any]) -> None:
    answer_ids = []
    for stream in (False, True):
        text, notice, cid = _ask(api["url"], stream)
        assert "dertig seconden" in text  # the answer still comes
        assert notice and "niet bedoeld voor patiëntgegevens" in notice
        answer_ids.append(cid)
    r = httpx.post(f"{api['url']}/api/feedback", headers={"Authorization": f"Bearer {KEY}"}, timeout=60,
                   json={"answer_id": answer_ids[0], "vote": "down",
                         "comment": "Geldt dit ook voor mevrouw J. de Vries (BSN 111222333)?"})
    assert r.status_code == 201, r.text
    api["comps"].audit.close()

    # what was kept: placeholders and counts
    if api["dsn"] is None:
        recs = [r for r in read_records(api["data"] / "audit.jsonl") if r["event_type"].startswith("chat.")]
    else:
        recs = [r for r in api["comps"].audit.records() if r["event_type"].startswith("chat.")]
    assert len(recs) == 4  # an access and an outcome record per question
    for rec in recs:
        assert "[BSN]" in rec["question"] and "[GEBOORTEDATUM]" in rec["question"] and "[NAAM]" in rec["question"]
        assert rec["question_redactions"]["bsn"] == 1 and rec["question_redactions"]["birth_date"] == 1

    # the values are nowhere: files under the data directory …
    hits = []
    for f in api["data"].rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            hits += [f"{f}: {v}" for v in leaked(blob)]
    assert not hits, hits
    # … the server log …
    logged = api["log"].read_text(encoding="utf-8")
    assert logged  # it did log (requests, ingest); just never the question
    assert not leaked(logged.encode())
    # … and every PostgreSQL table
    if api["dsn"] is not None:
        pg_dump = shutil.which("pg_dump")
        assert pg_dump, "pg_dump (postgresql-client) is installed with the server"
        dump = subprocess.run([pg_dump, "--data-only", "-d", api["dsn"]], capture_output=True, check=True).stdout
        assert b"[BSN]" in dump  # the dump does hold the redacted question
        assert not leaked(dump)


def test_the_year_is_found_on_its_own_and_not_inside_digests_or_timestamps() -> None:
    """Replays the fresh-clone CI failure: pg_dump's output held "1961" inside a digest or a timestamp."""
    assert not leaked(b"f3a91961c0de 1796671961.25 c0a81961-77aa 2026-12-07T20:19:61")
    for blob in (b"geboren in 1961", b"03/1961,", b'"1961"', b"12-03-1961", b"born 1961-03-12"):
        assert leaked(blob), blob


def test_question_text_modes(tmp_path: Path) -> None:
    from serving.staff.question_guard import QuestionGuard

    for mode, expect in (("none", None), ("full", QUESTION)):
        guard = QuestionGuard(make_settings(tmp_path, audit={"question_text": mode}))
        got = guard.check(QUESTION)
        assert got.stored == expect and got.patient_data and got.notice
    guard = QuestionGuard(make_settings(tmp_path))  # the default: redacted
    got = guard.check(QUESTION)
    assert got.stored is not None and not leaked(got.stored.encode())
    assert got.stored.endswith("[NAAM], BSN [BSN], geboren [GEBOORTEDATUM]: hoe lang moet ik de handalcohol inwrijven?")
    clean = guard.check("Hoe lang moet ik de handalcohol inwrijven?")
    assert clean.stored == "Hoe lang moet ik de handalcohol inwrijven?" and not clean.patient_data
    assert clean.notice is None and clean.audit_extra() == {}


def test_the_old_setting_is_refused_with_its_new_name(tmp_path: Path) -> None:
    from vraagbaak_core.settings import ConfigError

    with pytest.raises((ConfigError, ValueError), match="question_text"):
        make_settings(tmp_path, audit={"store_question_text": True})


def test_the_tests_question_tags_are_stored_as_asked(tmp_path: Path) -> None:
    """Replays the fresh-clone CI failure of 7 Dec: a test told its question apart by a hex tag, and
    ``(1234ab)`` was stored as ``([ADRES])`` (a Dutch postcode), so its audit record was never found.
    The real guard redacts that tag; the letters-only tags the tests now use pass through unchanged."""
    from support import question_tag

    from serving.staff.question_guard import QuestionGuard

    guard = QuestionGuard(make_settings(tmp_path))
    asked = "Wat zijn de regels voor handhygiëne op de afdeling?"
    assert guard.check(f"{asked} (1234ab)").stored == f"{asked} ([ADRES])"
    for _ in range(300):
        q = f"{asked} ({question_tag(6)}) #{question_tag()}"
        assert guard.check(q).stored == q
