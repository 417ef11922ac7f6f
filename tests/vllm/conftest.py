"""Session-scoped real vLLM CPU server for the ``vllm`` suite; see tests/vllm_server.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vllm_server import VllmServer, generator_server, vllm_usable


@pytest.fixture(scope="session")
def vllm_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    if not vllm_usable():
        pytest.skip("VRAAGBAAK_SKIP_VLLM=1 or a CPU without AVX2/AVX512: the real vLLM server suite is off")
    server = generator_server(tmp_path_factory)  # launched already when the embedder contract ran
    server.wait_ready()
    print(f"\nvLLM ready on {server.base_url} in {server.start_s:.0f} s (log: {server.log_path})")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vllm(vllm_session: VllmServer) -> VllmServer:
    """The session's server, restarted if an earlier test stopped it."""
    vllm_session.ensure_running()
    return vllm_session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that kill the server run last, so it is started only once per session."""
    items.sort(key=lambda item: "killed" in item.name)
