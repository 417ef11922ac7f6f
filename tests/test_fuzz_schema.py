"""Schemathesis against the live app's OpenAPI schema (issue 11 item 22): every route, without
credentials and as an admin; no 5xx and no response that breaks its documented schema.

The short run (a few examples per operation) is part of ``make test``; ``make fuzz`` sets
``VRAAGBAAK_FUZZ_EXAMPLES`` for the long run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from support import LiveServer, make_settings

ADMIN = "key-fuzz-admin-0123456789"
EXAMPLES = int(os.environ.get("VRAAGBAAK_FUZZ_EXAMPLES", "4"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any) -> Iterator[str]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "docs").mkdir()
    (tmp / "docs" / "koelkast.txt").write_text("De medicatiekoelkast staat op 4 graden.", encoding="utf-8")
    settings_ = make_settings(
        tmp,
        auth={"mode": "api-key", "api_keys": [{"key_sha256": hash_key(ADMIN), "user_id": "fuzz", "roles": ["admin"],
                                              "groups": ["iedereen"]}]},
        generator={"max_tokens": 4, "max_concurrent": 2, "max_queue": 8},
        limits={"rate_per_minute": 100_000},
    )
    comps = build_components(settings_, embedder=embedder, generator=generator)
    assert not comps.ingestor.ingest_paths([tmp / "docs"], Labels(groups=("iedereen",))).failed
    with LiveServer(create_app(settings_, comps)) as srv:
        yield srv.url
    comps.ingestor.close()
    comps.store.close()


def test_no_5xx_and_responses_match_the_schema(fuzz_server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server}/openapi.json")
    checks = [not_a_server_error, response_schema_conformance]
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 8, "the schema lists fewer routes than expected"
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            for headers in ({}, {"Authorization": f"Bearer {ADMIN}"}):
                try:
                    case.call_and_validate(base_url=fuzz_server, checks=checks, timeout=120, headers=headers)
                except Exception as err:  # collect every operation's failures, then fail
                    failures.append(f"{case.method} {case.path} ({'admin' if headers else 'anonymous'}): "
                                    f"{str(err)[:300]}")
                    return

        run()
    print(f"\nschemathesis: {len(operations)} operations, {EXAMPLES} examples each, anonymous and admin")
    assert not failures, "\n".join(failures)
