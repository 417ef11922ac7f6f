"""The answer check on the live API: ``POST /api/answer-check`` (auth, validation, limits, schema) and
``message.claims`` in streamed and non-streamed chat answers, with the three ``answer_check`` modes.

Real store, embedder, extractive answerer and HTTP; the language model is the real SmolLM2 wrapped so
that its answer is a scripted unfaithful one (the edge case under test: a model that changes a number).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from support import LiveServer, make_settings

from serving.staff.chat.service import CHECK_NOTICE
from vraagbaak_core.types import ChatMessage, GenerationParams

STAFF, INGEST = "key-staff-0123456789abcdef", "key-ingest-0123456789abcdef"
QUESTION = "Hoe lang moet ik handalcohol inwrijven?"
HANDEN = (
    "# Protocol handhygiëne\n\n## Handalcohol\n\n"
    "Gebruik handalcohol (70–80%) als de handen niet zichtbaar vuil zijn. Wrijf de handalcohol "
    "minimaal 30 seconden in tot de handen droog zijn. Was de handen met water en zeep als ze "
    "zichtbaar vuil zijn.\n\n## Basisvoorwaarden\n\nDraag geen sieraden, horloges of polsbandjes aan "
    "handen en onderarmen.\n"
)
FAITHFUL = "Wrijf de handalcohol minimaal 30 seconden in tot de handen droog zijn [1]."
CHANGED = "Wrijf de handalcohol minimaal 40 seconden in [1]."
NEGATION_DROPPED = "Draag sieraden, horloges of polsbandjes aan handen en onderarmen [1]."


class ScriptedModel:
    """The real generator (token counting, window) whose answer is replaced by ``script``."""

    def __init__(self, inner: Any, script: str) -> None:
        self.inner, self.script = inner, script

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        return self.script

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        for i, word in enumerate(self.script.split(" ")):
            yield ("" if i == 0 else " ") + word


def _key(key: str, user: str, roles: list[str]) -> dict[str, Any]:
    from serving.http.auth import hash_key

    return {"key_sha256": hash_key(key), "user_id": user, "roles": roles, "groups": ["zorg"], "clearance": "intern"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any) -> Iterator[dict[str, str]]:
    """One store, three APIs: answer_check flag, drop and fallback."""
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("answer-check")
    (tmp / "docs").mkdir()
    (tmp / "docs" / "handen.md").write_text(HANDEN, encoding="utf-8")
    model = ScriptedModel(generator, f"{FAITHFUL} {CHANGED} {NEGATION_DROPPED}")
    auth = {"mode": "api-key", "api_keys": [_key(STAFF, "zorg", ["staff"]), _key(INGEST, "it", ["ingest"])]}
    base = build_components(make_settings(tmp / "flag", auth=auth, limits={"max_body_bytes": 20_000}),
                            embedder=embedder, generator=model)
    assert base.ingestor is not None
    assert not base.ingestor.ingest_paths([tmp / "docs"], Labels(groups=("zorg",))).failed
    apps = {"flag": create_app(base.settings, base)}
    for mode in ("drop", "fallback"):
        settings = make_settings(tmp / mode, auth=auth, answer_check=mode)
        apps[mode] = create_app(settings, build_components(settings, embedder=embedder, generator=model,
                                                           store=base.store))
    with LiveServer(apps["flag"]) as flag, LiveServer(apps["drop"]) as drop, LiveServer(apps["fallback"]) as fb:
        yield {"flag": flag.url, "drop": drop.url, "fallback": fb.url}


def _ask(url: str, stream: bool = False) -> httpx.Response:
    body = {"model": "vraagbaak", "stream": stream, "messages": [{"role": "user", "content": QUESTION}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300,
                      headers={"Authorization": f"Bearer {STAFF}"})


def _last_chunk(r: httpx.Response) -> dict[str, Any]:
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert r.text.rstrip().endswith("data: [DONE]")
    return dict(events[-1])


def _streamed_text(r: httpx.Response) -> str:
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if "choices" in e)


# --------------------------------------------------------------------------- POST /api/answer-check


def _check(url: str, body: Any, key: str | None = STAFF) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/api/answer-check", json=body, headers=headers, timeout=60)


def test_answer_check_route_returns_claims(servers: dict[str, str]) -> None:
    r = _check(servers["flag"], {"answer": f"{FAITHFUL} {CHANGED}", "sources": [{"n": 1, "text": HANDEN}],
                                 "language": "nl"})
    assert r.status_code == 200, r.text
    claims = r.json()["claims"]
    assert [(c["sentence"], c["status"], c["cites"]) for c in claims] == [
        (FAITHFUL, "supported", [1]), (CHANGED, "unsupported", [1])]
    assert claims[0]["reason"] is None and claims[1]["kind"] == "number" and "40 seconden" in claims[1]["reason"]
    en = _check(servers["flag"], {"answer": "Rub for 40 seconds [1].", "sources": [{"n": 1, "text": HANDEN}],
                                  "language": None}).json()["claims"]
    assert en[0]["status"] == "unsupported" and en[0]["reason"].startswith("number")


def test_answer_check_route_needs_the_staff_role(servers: dict[str, str]) -> None:
    body = {"answer": FAITHFUL, "sources": [{"n": 1, "text": HANDEN}]}
    none = _check(servers["flag"], body, key=None)
    assert none.status_code == 401 and none.json()["error"]["type"]
    assert _check(servers["flag"], body, key="wrong-key-0123456789").status_code == 401
    forbidden = _check(servers["flag"], body, key=INGEST)
    assert forbidden.status_code == 403 and "error" in forbidden.json()


@pytest.mark.parametrize("body", [
    {"sources": [{"n": 1, "text": "x"}]},
    {"answer": "", "sources": []},
    {"answer": "a [1]", "sources": [{"n": 0, "text": "x"}]},
    {"answer": "a [1]", "sources": [{"n": 1, "text": "x"}, {"n": 1, "text": "y"}]},
    {"answer": "a [1]", "sources": [{"n": 1, "text": "x"}], "language": "fr"},
    {"answer": "a [1]", "sources": [{"n": 1, "text": "x", "extra": 1}]},
    ["not", "an", "object"],
])
def test_answer_check_route_refuses_bad_bodies_with_the_envelope(servers: dict[str, str], body: Any) -> None:
    r = _check(servers["flag"], body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_answer_check_route_limits(servers: dict[str, str]) -> None:
    too_big = _check(servers["flag"], {"answer": "x", "sources": [{"n": 1, "text": "woord " * 5000}]})
    assert too_big.status_code == 413 and "error" in too_big.json()
    long_answer = _check(servers["flag"], {"answer": "lang " * 2000, "sources": []})
    assert long_answer.status_code == 400 and long_answer.json()["error"]["code"] == "answer_too_long"


def test_answer_check_is_in_the_openapi_schema(servers: dict[str, str]) -> None:
    schema = httpx.get(f"{servers['flag']}/openapi.json", timeout=30).json()
    op = schema["paths"]["/api/answer-check"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("AnswerCheckRequest")
    claim = schema["components"]["schemas"]["WireClaim"]["properties"]
    assert set(claim) >= {"sentence", "status", "cites", "reason"}
    assert schema["components"]["schemas"]["AnswerCheckRequest"]["required"] == ["answer", "sources"]


# --------------------------------------------------------------------------- claims in chat answers, three modes


def test_flag_keeps_the_answer_and_marks_claims_streamed_and_not(servers: dict[str, str]) -> None:
    r = _ask(servers["flag"])
    assert r.status_code == 200, r.text
    msg = r.json()["choices"][0]["message"]
    assert msg["sources"][0]["title"] == "Protocol handhygiëne"
    assert msg["content"] == f"{FAITHFUL} {CHANGED} {NEGATION_DROPPED}" and msg["mode"] == "generative"
    assert [(c["status"], c["kind"]) for c in msg["claims"]] == [
        ("supported", None), ("unsupported", "number"), ("unsupported", "negation")]
    s = _ask(servers["flag"], stream=True)
    last = _last_chunk(s)
    assert last["choices"][0]["finish_reason"] == "stop" and last["citations"]
    assert [c["status"] for c in last["claims"]] == ["supported", "unsupported", "unsupported"]
    assert _streamed_text(s) == msg["content"]
    metrics = httpx.get(f"{servers['flag']}/metrics", timeout=30).text
    assert 'vraagbaak_answer_claims_total{status="unsupported"} 4.0' in metrics
    assert 'vraagbaak_answer_claims_total{status="supported"} 2.0' in metrics


def test_drop_removes_unsupported_sentences(servers: dict[str, str]) -> None:
    msg = _ask(servers["drop"]).json()["choices"][0]["message"]
    assert msg["content"] == FAITHFUL and msg["mode"] == "generative"
    assert [c["status"] for c in msg["claims"]] == ["supported", "unsupported", "unsupported"]
    s = _ask(servers["drop"], stream=True)
    assert _streamed_text(s) == FAITHFUL
    assert [c["status"] for c in _last_chunk(s)["claims"]] == ["supported", "unsupported", "unsupported"]
    metrics = httpx.get(f"{servers['drop']}/metrics", timeout=30).text
    assert 'vraagbaak_answer_check_actions_total{action="dropped"} 2.0' in metrics


def test_fallback_replaces_the_answer_with_the_extractive_one_marked(servers: dict[str, str]) -> None:
    msg = _ask(servers["fallback"]).json()["choices"][0]["message"]
    assert msg["mode"] == "extractive" and msg["notice"] == CHECK_NOTICE["nl"]
    assert msg["content"].startswith(CHECK_NOTICE["nl"]) and "30 seconden" in msg["content"]
    assert "40 seconden" not in msg["content"]
    assert msg["claims"] and all(c["status"] == "supported" for c in msg["claims"]), msg["claims"]
    s = _ask(servers["fallback"], stream=True)
    last = _last_chunk(s)
    assert last["mode"] == "extractive" and last["notice"] == CHECK_NOTICE["nl"] and last["claims"]
    assert _streamed_text(s) == msg["content"]
    metrics = httpx.get(f"{servers['fallback']}/metrics", timeout=30).text
    assert 'vraagbaak_answer_check_actions_total{action="fallback"} 2.0' in metrics
    assert 'vraagbaak_fallback_answers_total{reason="answer_check"}' not in metrics
