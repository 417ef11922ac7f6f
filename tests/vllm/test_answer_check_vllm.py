"""SmolLM2's answers from the real vLLM CPU server through the answer check: claims are present and
well-formed in every answer, streamed and not. SmolLM2 (135M) is not faithful; the rates are printed
(``-s``) and recorded in benchmarks/RESULTS.md, not asserted."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import EXAMPLES, ROOT, LiveServer, make_settings
from vllm_server import SERVED_NAME, VllmServer

pytestmark = pytest.mark.vllm
STATUSES = {"supported", "unsupported", "unverifiable"}
N_QUESTIONS = 8


@pytest.fixture(scope="module")
def check_api(tmp_path_factory: pytest.TempPathFactory, embedder: Any, vllm_session: VllmServer
              ) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    vllm_session.ensure_running()
    tmp = tmp_path_factory.mktemp("answer-check-vllm")
    docs = tmp / "docs"
    shutil.copytree(EXAMPLES, docs)
    settings = make_settings(
        tmp,
        generator={"backend": "openai", "base_url": vllm_session.base_url, "served_model_name": SERVED_NAME,
                   "model_path": str(vllm_session.model_dir), "max_tokens": 64, "retries": 1},
    )
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    assert not comps.ingestor.ingest_paths([docs], Labels()).failed
    with LiveServer(create_app(settings, comps)) as server:
        yield {"url": server.url}


def _well_formed(claims: list[dict[str, Any]], content: str, n_sources: int) -> None:
    at = 0
    for c in claims:
        assert set(c) >= {"sentence", "status", "cites", "reason"}
        assert c["status"] in STATUSES
        assert all(1 <= n <= n_sources for n in c["cites"]) or c["kind"] == "citation"
        assert (c["reason"] is None) == (c["status"] == "supported"), c
        found = content.find(c["sentence"], at)
        assert found >= 0, (c["sentence"], content)  # every claim is a sentence of the answer, in order
        at = found + len(c["sentence"])


def test_smollm2_answers_carry_well_formed_claims(check_api: dict[str, Any]) -> None:
    questions = json.loads((ROOT / "benchmarks" / "data" / "examples_questions.json").read_text(encoding="utf-8"))
    questions = [q["q"] for q in questions["questions"]]
    counts: Counter[str] = Counter()
    flagged = 0
    for q in questions[:N_QUESTIONS]:
        body = {"model": "vraagbaak", "messages": [{"role": "user", "content": q}]}
        r = httpx.post(f"{check_api['url']}/v1/chat/completions", json=body, timeout=600)
        assert r.status_code == 200, r.text
        msg = r.json()["choices"][0]["message"]
        assert msg["mode"] == "generative" and isinstance(msg["claims"], list)
        if msg["abstained"]:
            assert msg["claims"] == []
            continue
        assert msg["claims"], msg["content"]  # a non-empty generated answer has at least one sentence
        _well_formed(msg["claims"], msg["content"], len(msg["sources"]))
        counts.update(c["status"] for c in msg["claims"])
        flagged += any(c["status"] == "unsupported" for c in msg["claims"])
    streamed = httpx.post(f"{check_api['url']}/v1/chat/completions", timeout=600, json={
        "model": "vraagbaak", "stream": True, "messages": [{"role": "user", "content": questions[0]}]})
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    last = events[-1]
    content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert last["choices"][0]["finish_reason"] == "stop" and isinstance(last["claims"], list) and last["claims"]
    _well_formed(last["claims"], content.strip(), len(last["sources"]))
    total = sum(counts.values())
    assert total > 0
    print(f"\nSmolLM2 via vLLM, {N_QUESTIONS} examples questions: {total} claims: "
          + ", ".join(f"{s} {counts[s]} ({counts[s] / total:.0%})" for s in sorted(STATUSES))
          + f"; answers with an unsupported sentence: {flagged}")
