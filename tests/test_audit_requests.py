"""NEN 7513 records of chat requests on the live API (issue 11 items 6, 8, 11, 12).

- every chat request that retrieved sources writes exactly one record, whatever its outcome;
- merged adjacent chunks are each named; the role is the caller's own;
- fail closed: with the audit log on a real full or read-only file system, the request is a 503 and
  no answer (nor any source) is sent;
- failed sign-ins are rate-limited per address and aggregated into one record per address per interval.

The one scripted edge case is the generator that fails or holds mid-stream (a real model cannot be made
to fail on cue); everything else is real: uvicorn, the models, Qdrant Edge, tmpfs mounts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import LiveServer, make_settings, question_tag

from vraagbaak_core.audit import AuditLog, read_records
from vraagbaak_core.errors import GeneratorError
from vraagbaak_core.types import ChatMessage, GenerationParams

KEY_STAFF = "key-staff-audit-0123456789"
KEY_ADMIN = "key-admin-audit-0123456789"
PARAS = [
    "Handhygiëne op de afdeling: was de handen voor en na elk patiëntcontact met water en zeep.",
    "Handhygiëne bij isolatie: desinfecteer de handen met handalcohol bij het verlaten van de kamer.",
    "Handhygiëne en sieraden: draag geen ringen, horloges of armbanden tijdens de zorg aan de patiënt.",
    "Handhygiëne en nagels: houd de nagels kort en draag geen kunstnagels of nagellak op de afdeling.",
]
QUESTION = "Wat zijn de regels voor handhygiëne op de afdeling?"


class ScriptedGenerator:
    """Wraps the real generator: ``fail`` ends a stream with an upstream error after two pieces;
    ``hold`` keeps a stream open after each piece (a long answer)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False
        self.hold = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        return str(await self.inner.generate(messages, params))

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        n = 0
        async for piece in self.inner.stream(messages, params):
            yield piece
            while self.hold.is_set():
                await asyncio.sleep(0.02)
            n += 1
            if self.fail and n == 2:
                raise GeneratorError("upstream generator stopped mid-stream")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    tmp = tmp_path_factory.mktemp("auditreq")
    (tmp / "docs").mkdir()
    (tmp / "docs" / "handhygiene.md").write_text("# Handhygiëne\n\n" + "\n\n".join(PARAS * 2), encoding="utf-8")
    keys = [
        {"key_sha256": hash_key(KEY_STAFF), "user_id": "zorg-1", "roles": ["staff"], "groups": ["zorg"]},
        {"key_sha256": hash_key(KEY_ADMIN), "user_id": "beheer-1", "roles": ["staff", "admin"], "groups": ["zorg"]},
    ]
    settings = make_settings(
        tmp, auth={"mode": "api-key", "api_keys": keys},
        generator={"max_tokens": 12, "max_concurrent": 2, "max_queue": 2},
        ingest={"chunk_tokens": 32, "chunk_overlap": 4},
        retrieval={"max_chunks_per_doc": 6, "top_k": 4},
        limits={"rate_per_minute": 1000},
    )
    gen = ScriptedGenerator(generator)
    comps = build_components(settings, embedder=embedder, generator=gen)
    assert comps.ingestor is not None
    rep = comps.ingestor.ingest_paths([tmp / "docs"], Labels(groups=("zorg",)))
    assert not rep.failed
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "gen": gen, "comps": comps, "settings": settings, "tmp": tmp}
    gen.hold.clear()
    asyncio.run(gen.aclose())  # no generation left running into interpreter exit
    comps.ingestor.close()
    comps.store.close()


def _body(question: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "vraagbaak", "stream": stream, "messages": [{"role": "user", "content": question}]}


def _hdr(key: str = KEY_STAFF) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _records_for(comps: Any, question: str) -> list[dict[str, Any]]:
    recs = read_records(comps.audit.path)
    return [r for r in recs if r.get("event_type") == "chat.question" and r.get("question") == question]


def _wait(pred: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _unique(q: str = QUESTION) -> str:
    return f"{q} ({question_tag(6)})"


# --- item 6: one record per request, whatever the outcome ---


def test_success_writes_exactly_one_record(live: dict[str, Any]) -> None:
    q = _unique()
    for stream in (False, True):
        qq = f"{q} {'stream' if stream else 'plain'}"
        with httpx.Client(timeout=300) as c:
            r = c.post(f"{live['url']}/v1/chat/completions", json=_body(qq, stream), headers=_hdr())
        assert r.status_code == 200
        recs = _records_for(live["comps"], qq)
        assert len(recs) == 1, recs
        assert recs[0]["outcome"] == "success" and recs[0]["outcome_reason"] is None
        assert any(o["type"] == "chunk" for o in recs[0]["objects"])


def test_client_disconnect_mid_stream_writes_one_aborted_record(live: dict[str, Any]) -> None:
    q = _unique()
    gate = live["comps"].gate
    live["gen"].hold.set()
    try:
        with httpx.Client(timeout=300) as c, c.stream(
            "POST", f"{live['url']}/v1/chat/completions", json=_body(q, True), headers=_hdr()
        ) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            next(lines)  # the first piece of the answer arrived; then the client goes away
        _wait(lambda: gate.in_flight == 0)
        _wait(lambda: len(_records_for(live["comps"], q)) > 0)
    finally:
        live["gen"].hold.clear()
    time.sleep(0.3)  # a second record would come now
    recs = _records_for(live["comps"], q)
    assert len(recs) == 1, recs
    assert recs[0]["outcome"] == "aborted" and "disconnect" in recs[0]["outcome_reason"]
    assert any(o["type"] == "chunk" for o in recs[0]["objects"])  # the sources it was answering from


def test_generator_failure_mid_stream_writes_one_failure_record(live: dict[str, Any]) -> None:
    q = _unique()
    live["gen"].fail = True
    try:
        with httpx.Client(timeout=300) as c:
            r = c.post(f"{live['url']}/v1/chat/completions", json=_body(q, True), headers=_hdr())
        assert r.status_code == 200 and "generator_error" in r.text
    finally:
        live["gen"].fail = False
    recs = _records_for(live["comps"], q)
    assert len(recs) == 1, recs
    assert recs[0]["outcome"] == "failure" and "mid-stream" in recs[0]["outcome_reason"]


# --- item 8: every merged chunk, and the real role ---


def test_record_names_every_merged_chunk_and_the_callers_roles(live: dict[str, Any]) -> None:
    from vraagbaak_core.types import Identity

    comps = live["comps"]
    ident = Identity(user_id="beheer-1", roles=frozenset({"staff", "admin"}), groups=frozenset({"zorg"}),
                     clearance="intern", auth_method="api-key")
    hits = comps.retriever.search(QUESTION, ident)
    merged = [h for h in hits if h.merged_chunk_ids]
    assert merged, "the corpus is built so that adjacent chunks are merged"
    shown = {c for h in hits for c in h.shown_chunk_ids}
    assert len(shown) > len(hits)
    q = _unique()
    with httpx.Client(timeout=300) as c:
        r = c.post(f"{live['url']}/v1/chat/completions", json=_body(q), headers=_hdr(KEY_ADMIN))
    assert r.status_code == 200
    (rec,) = _records_for(comps, q)
    logged = {o["id"] for o in rec["objects"] if o["type"] == "chunk"}
    sources = r.json()["choices"][0]["message"]["sources"]
    assert len(logged) > len(sources)  # more chunks than sources: the merged ones are each named
    assert rec["role"] == "admin,staff"
    assert rec["user_id"] == "beheer-1"


# --- item 11: fail closed on a real full or read-only file system ---


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path) -> None:
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 512)
    except OSError as err:
        assert err.errno == 28  # ENOSPC: the file system is really full
    finally:
        os.close(fd)


def _swap_audit(live: dict[str, Any], log: AuditLog) -> AuditLog:
    comps = live["comps"]
    saved: AuditLog = comps.audit
    comps.audit = log
    return saved


@needs_root
@pytest.mark.parametrize("stream", [False, True])
def test_full_disk_is_503_and_no_answer(live: dict[str, Any], tiny_fs: Path, stream: bool) -> None:
    log = AuditLog(tiny_fs / "audit.jsonl")
    log.auth_failure(reason="seed", network_access_point="127.0.0.1")  # the log exists, then the disk fills
    _fill(tiny_fs)
    saved = _swap_audit(live, log)
    try:
        with httpx.Client(timeout=300) as c:
            r = c.post(f"{live['url']}/v1/chat/completions", json=_body(_unique(), stream), headers=_hdr())
    finally:
        live["comps"].audit = saved
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "audit_unavailable"
    assert "sources" not in r.text and "choices" not in r.text


@needs_root
def test_write_failing_after_the_answer_is_503_and_no_answer(live: dict[str, Any], tiny_fs: Path) -> None:
    """The early check passes (no free-space reserve), the disk is full: the record's own write fails
    with a real ENOSPC after generation, and the answer is withheld."""
    from vraagbaak_core.audit import FileAuditSink

    _fill(tiny_fs)  # full before the log's first page is allocated: its first write gets ENOSPC
    log = AuditLog(sink=FileAuditSink(tiny_fs / "audit.jsonl", min_free_bytes=0))
    log.check_writable()  # the early check cannot see it coming
    saved = _swap_audit(live, log)
    try:
        with httpx.Client(timeout=300) as c:
            r = c.post(f"{live['url']}/v1/chat/completions", json=_body(_unique()), headers=_hdr())
    finally:
        live["comps"].audit = saved
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "audit_unavailable" and "choices" not in r.text
    assert list(log.sink.entries()) == []  # nothing torn was left behind


@needs_root
def test_read_only_audit_file_is_503_and_no_answer(live: dict[str, Any], tiny_fs: Path) -> None:
    log = AuditLog(tiny_fs / "audit.jsonl")
    log.auth_failure(reason="seed", network_access_point="127.0.0.1")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    saved = _swap_audit(live, log)
    try:
        with httpx.Client(timeout=300) as c:
            r = c.post(f"{live['url']}/v1/chat/completions", json=_body(_unique(), True), headers=_hdr())
    finally:
        live["comps"].audit = saved
    assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
    assert "data:" not in r.text


# --- item 12: failed sign-ins are rate-limited per address, then aggregated ---


def test_auth_failure_flood_is_rate_limited_and_aggregated(live: dict[str, Any]) -> None:
    from serving.http.auth_failures import AuthFailureAudit

    comps = live["comps"]
    saved = comps.auth_failures
    comps.auth_failures = AuthFailureAudit(comps.audit, interval_s=3600, per_minute=5)
    before = len(list(comps.audit.records()))
    try:
        with httpx.Client(timeout=60) as c:
            codes = [c.get(f"{live['url']}/v1/models", headers=_hdr("wrong-key")).status_code for _ in range(40)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        assert len(list(comps.audit.records())) == before  # the flood wrote nothing (yet)
        assert comps.auth_failures.flush_all() == 1
    finally:
        comps.auth_failures = saved
    new = list(comps.audit.records())[before:]
    assert len(new) == 1
    rec = new[0]
    assert rec["event_type"] == "auth.failure" and rec["network_access_point"] == "127.0.0.1"
    assert rec["count"] == 40 and "unknown API key" in rec["outcome_reason"]
    assert rec["window_start"] <= rec["window_end"]


def test_auth_failure_windows_close_into_one_record_each(live: dict[str, Any]) -> None:
    from serving.http.auth_failures import AuthFailureAudit

    comps = live["comps"]
    agg = AuthFailureAudit(comps.audit, interval_s=0.2, per_minute=1000)
    before = len(list(comps.audit.records()))
    for _ in range(7):
        agg.failed("10.1.2.3", "unknown API key")
    agg.failed("10.9.9.9", "missing bearer credentials")
    assert len(list(comps.audit.records())) == before
    time.sleep(0.25)
    agg.failed("10.1.2.3", "unknown API key")  # opens the next window and flushes the passed ones
    new = list(comps.audit.records())[before:]
    assert sorted((r["network_access_point"], r["count"]) for r in new) == [("10.1.2.3", 7), ("10.9.9.9", 1)]
    assert agg.flush_all() == 1
