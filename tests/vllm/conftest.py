"""Session-scoped real vLLM CPU server for the ``vllm`` suite; see tests/vllm_server.py."""

from __future__ import annotations

import os
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
    """The embedder contract's vLLM leg runs just before this suite (its fixture launches this suite's
    server too, so both start together and neither idles through the rest of the session); tests that
    kill the server run last, so it is started only once more."""
    def key(item: pytest.Item) -> tuple[bool, bool]:
        path = str(item.path)
        vllm = "TestOpenAIOnVllm" in item.nodeid or f"{os.sep}vllm{os.sep}" in path
        return "killed" in item.name, vllm

    items.sort(key=key)
