"""Document control scoped to its owner (issue 19 item 1), replayed over the CLI and over the API.

- The kitchen case: the nurses' ``handhygiene.md`` (family handhygiene, version 3, group zorg) and a
  kitchen file in another source set (family handhygiene, version 99, group keuken). A nurse asking
  how long to rub in hand alcohol gets the nurses' protocol, not the abstention. Over the API (one
  upload set), an ingest identity that manages only ``keuken`` cannot retire the nurses' protocol.
- The 2099 case: a version valid from 2099-01-01 waits; today's version answers until that day and
  the new one takes over on it without a re-ingest (the query-time filter). ``documents due`` lists
  the switch-over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import LiveServer, make_settings
from typer.testing import CliRunner

from ingest.doccontrol import Versioned, resolve_control, standings

QUESTION = "Hoe lang moet ik de handalcohol inwrijven?"
NURSES = "Wrijf de handalcohol minstens dertig seconden in, tot de handen droog zijn."
KITCHEN = "Was in de keuken de handen met zeep voordat je voedsel bereidt en na het afval wegbrengen."
FUTURE = "Wrijf de handalcohol minstens veertig seconden in, ook tussen de vingers en over de duimen."


def _md(front: str, title: str, body: str) -> str:
    return f"---\n{front.strip()}\n---\n# {title}\n\n{body}\n"


V3 = _md("family: handhygiene\nversion: '3'\nstatus: vastgesteld", "Protocol handhygiëne", NURSES)
V99 = _md("family: handhygiene\nversion: '99'\nstatus: vastgesteld", "Handhygiëne in de keuken", KITCHEN)
V4 = _md("family: handhygiene\nversion: '4'\nstatus: vastgesteld\nvalid_from: 2099-01-01",
         "Protocol handhygiëne", FUTURE)


class _In2099(date):
    @classmethod
    def today(cls) -> _In2099:
        return cls(2099, 1, 2)


# --- the rules, one by one ---


def test_standings_scope_families_and_supersession_to_their_owner() -> None:
    def v(doc: str, sset: str, groups: tuple[str, ...], **kw: str) -> Versioned:
        return Versioned(doc, f"{doc}.md", resolve_control([kw]), "", sset, groups)

    nurses = v("n3", "zorg-set", ("zorg",), family="handhygiene", version="3", status="vastgesteld")
    kitchen = v("k99", "keuken-set", ("keuken",), family="handhygiene", version="99", status="vastgesteld")
    got = standings([nurses, kitchen])
    assert got["n3"].lifecycle == "current" and got["k99"].lifecycle == "current"
    # the same source set (uploads) but another group's document: still not superseded
    k_up = v("k99", "zorg-set", ("keuken",), family="handhygiene", version="99", status="vastgesteld")
    assert standings([nurses, k_up])["n3"].lifecycle == "current"
    # supersedes: names a document of the own source set only
    beleid_a = v("ba", "a", ("zorg",), version="1", status="vastgesteld")
    new_b = v("nb", "b", ("zorg",), version="2", status="vastgesteld", supersedes="ba.md")
    new_a = v("na", "a", ("zorg",), version="2", status="vastgesteld", supersedes="ba.md")
    assert standings([beleid_a, new_b])["ba"].lifecycle == "current"
    assert standings([beleid_a, new_a])["ba"].lifecycle == "superseded"
    # an explicit family scope owned by a group joins source sets, for that group's documents only
    s1 = v("s1", "a", ("zorg",), family="zorg:hh", version="1", status="vastgesteld")
    s2 = v("s2", "b", ("zorg",), family="zorg:hh", version="2", status="vastgesteld")
    s3 = v("s3", "c", ("keuken",), family="zorg:hh", version="9", status="vastgesteld")
    got = standings([s1, s2, s3])
    assert (got["s1"].lifecycle, got["s2"].lifecycle, got["s3"].lifecycle) == ("superseded", "current", "current")


def test_a_future_version_waits_and_takes_over_on_its_date() -> None:
    def v(doc: str, **kw: str) -> Versioned:
        return Versioned(doc, f"{doc}.md", resolve_control([kw]), "", "zorg-set", ("zorg",))

    v3 = v("v3", family="hh", version="3", status="vastgesteld")
    v4 = v("v4", family="hh", version="4", status="vastgesteld", valid_from="2099-01-01")
    now = standings([v3, v4], date(2026, 12, 7))
    assert now["v3"].lifecycle == "current" and now["v3"].until == "2099-01-01"
    assert now["v4"].lifecycle == "current" and now["v4"].until is None
    later = standings([v3, v4], date(2099, 1, 1))
    assert later["v3"].lifecycle == "superseded" and later["v4"].lifecycle == "current"


# --- over the CLI ---


def _cli(args: list[str]) -> Any:
    from serving.cli.main import app
    from vraagbaak_core.egress import guard_scope

    with guard_scope():
        return CliRunner().invoke(app, args)


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {
        "DATA_DIR": tmp_path, "STORE__PATH": tmp_path / "edge", "INGEST__STATE_PATH": tmp_path / "state.sqlite",
        "INGEST__ORIGINALS_DIR": tmp_path / "originals", "AUDIT__PATH": tmp_path / "audit.jsonl",
        "INGEST__PATIENT_DATA__NAMES": "false", "AUTH__DEV_GROUPS": '["zorg"]',
    }.items():
        monkeypatch.setenv(f"VRAAGBAAK_{key}", str(value))
    return tmp_path


def _ask_cli() -> dict[str, Any]:
    out = _cli(["ask", QUESTION, "--json"])
    assert out.exit_code == 0, out.output
    start = out.output.index('{\n  "answer"')  # after the log lines (stderr is mixed in)
    end = out.output.index("\n}\n", start) + 2
    return dict(json.loads(out.output[start:end]))


def test_kitchen_and_2099_cases_over_the_cli(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zorg, keuken = cli_env / "zorg", cli_env / "keuken"
    zorg.mkdir()
    keuken.mkdir()
    (zorg / "handhygiene.md").write_text(V3, encoding="utf-8")
    (keuken / "handhygiene-keuken.md").write_text(V99, encoding="utf-8")
    for root, group in ((zorg, "zorg"), (keuken, "keuken")):
        out = _cli(["ingest", str(root), "--groups", group, "--source", group])
        assert out.exit_code == 0, out.output
    got = _ask_cli()
    assert not got["abstained"] and "dertig seconden" in got["answer"]
    # 2099: the new version waits; today's answers; the switch-over is listed
    (zorg / "handhygiene-2099.md").write_text(V4, encoding="utf-8")
    assert _cli(["ingest", str(zorg), "--groups", "zorg", "--source", "zorg"]).exit_code == 0
    got = _ask_cli()
    assert not got["abstained"] and "dertig seconden" in got["answer"] and "veertig" not in got["answer"]
    out = _cli(["documents", "due", "--within", "9999m", "--json"])
    assert out.exit_code == 0, out.output
    listing = out.output[out.output.index("[\n"):]
    rows = {(r["source"], r["what"], r["due"]) for r in json.loads(listing[: listing.rindex("]") + 1])}
    assert {("handhygiene-2099.md", "takes_over", "2099-01-01"), ("handhygiene.md", "replaced", "2099-01-01")} <= rows
    # on its date it answers, no re-ingest: the query-time filter
    monkeypatch.setattr("retrieval.access.date", _In2099)
    got = _ask_cli()
    assert not got["abstained"] and "veertig seconden" in got["answer"] and "dertig" not in got["answer"]


# --- over the API ---

KEYS = {"it-zorg": ("zorg", "key-it-zorg-0123456789abcdef"), "it-keuken": ("keuken", "key-it-keuken-0123456789ab"),
        "nurse": ("zorg", "key-nurse-0123456789abcdef")}


@pytest.fixture()
def api(tmp_path: Path, embedder: Any) -> Iterator[tuple[str, Any]]:
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    keys = []
    for user, (group, key) in KEYS.items():
        roles = ["staff"] if user == "nurse" else ["staff", "ingest"]
        keys.append({"key_sha256": hash_key(key), "user_id": user, "roles": roles, "groups": [group],
                     "manages": [] if user == "nurse" else [group]})
    settings = make_settings(tmp_path, auth={"mode": "api-key", "api_keys": keys},
                             ingest={"patient_data": {"names": False}})
    comps = build_components(settings, embedder=embedder)
    with LiveServer(create_app(settings, comps)) as srv:
        yield srv.url, comps


def _upload(url: str, user: str, name: str, text: str) -> None:
    group, key = KEYS[user]
    r = httpx.post(f"{url}/api/documents", headers={"Authorization": f"Bearer {key}"}, timeout=300,
                   files={"file": (name, text.encode(), "text/markdown")}, data={"groups": group})
    assert r.status_code == 201, r.text


def _ask_api(url: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEYS['nurse'][1]}"},
                   json={"model": "vraagbaak", "messages": [{"role": "user", "content": QUESTION}]}, timeout=300)
    assert r.status_code == 200, r.text
    return {**r.json()["choices"][0]["message"], "id": r.json()["id"]}


def test_kitchen_and_2099_cases_over_the_api(api: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    api, comps = api
    _upload(api, "it-zorg", "handhygiene.md", V3)
    _upload(api, "it-keuken", "handhygiene-keuken.md", V99)  # manages keuken only
    msg = _ask_api(api)
    assert not msg["abstained"] and "dertig seconden" in msg["content"]
    # the answer's receipt carries the document's version (item 6), not a hash prefix
    r = httpx.post(f"{api}/api/feedback", headers={"Authorization": f"Bearer {KEYS['nurse'][1]}"}, timeout=60,
                   json={"answer_id": msg["id"], "vote": "up"})
    assert r.status_code == 201, r.text
    (row,) = list(comps.feedback.export())
    assert [d.version for d in row.documents] == ["3"]
    _upload(api, "it-zorg", "handhygiene-2099.md", V4)
    msg = _ask_api(api)
    assert not msg["abstained"] and "dertig seconden" in msg["content"] and "veertig" not in msg["content"]
    monkeypatch.setattr("retrieval.access.date", _In2099)
    msg = _ask_api(api)
    assert not msg["abstained"] and "veertig seconden" in msg["content"] and "dertig" not in msg["content"]
