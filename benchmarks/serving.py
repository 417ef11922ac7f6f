"""What Vraagbaak's API adds on top of vLLM: the same requests sent directly to a real vLLM CPU server
and through the API (retrieval switched off), interleaved, in one run.

    .venv/bin/python benchmarks/serving.py [--vllm-url URL] [--requests 40] [--max-tokens 8]

Without --vllm-url it starts vLLM itself with scripts/vllm-cpu (scripts/vllm-cpu install first).
The API runs as its own process (`vraagbaak serve`, generator.backend=openai), as in production.
Prints a table and writes it under "## Serving" in benchmarks/RESULTS.md. Goal: < 10 ms added at p50.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SERVED = "smollm2"
PROMPT = "Wat zijn de bezoektijden op de verpleegafdeling?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float, log: Path) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"{url} exited while starting; log {log}:\n" + log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"{url} not ready after {timeout_s:.0f} s; log {log}")


@contextmanager
def process(
    cmd: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def cpu_has(flag: str) -> bool:
    return any(line.startswith("flags") and flag in line.split()
               for line in Path("/proc/cpuinfo").read_text().splitlines())


@dataclass
class Sample:
    total_ms: float
    ttft_ms: float | None = None


def request(client: httpx.Client, url: str, model: str, max_tokens: int, stream: bool, api: bool) -> Sample:
    body: dict[str, object] = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": stream,
                               "messages": [{"role": "user", "content": PROMPT}]}
    if api:
        body["retrieval"] = False
    t0 = time.perf_counter()
    if not stream:
        r = client.post(url, json=body)
        r.raise_for_status()
        return Sample((time.perf_counter() - t0) * 1000)
    ttft = None
    with client.stream("POST", url, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if ttft is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    ttft = (time.perf_counter() - t0) * 1000
    return Sample((time.perf_counter() - t0) * 1000, ttft)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(vllm_url: str, api_url: str, n: int, max_tokens: int, warmup: int) -> list[list[str]]:
    rows: list[list[str]] = []
    with httpx.Client(timeout=300) as client:
        for stream in (False, True):
            for _ in range(warmup):
                request(client, f"{vllm_url}/chat/completions", SERVED, max_tokens, stream, api=False)
                request(client, f"{api_url}/v1/chat/completions", SERVED, max_tokens, stream, api=True)
            direct: list[Sample] = []
            via: list[Sample] = []
            for i in range(n):  # interleaved, alternating order: both see the same machine
                pair = [(False, direct), (True, via)]
                for api, into in (pair if i % 2 == 0 else pair[::-1]):
                    url = f"{api_url}/v1/chat/completions" if api else f"{vllm_url}/chat/completions"
                    into.append(request(client, url, SERVED, max_tokens, stream, api))
            kind = "stream" if stream else "non-stream"
            metrics = [("latency", [s.total_ms for s in direct], [s.total_ms for s in via])]
            if stream:
                metrics.append(("TTFT", [s.ttft_ms or 0.0 for s in direct], [s.ttft_ms or 0.0 for s in via]))
            for name, d, v in metrics:
                added = [b - a for a, b in zip(d, v, strict=True)]
                rows.append([
                    f"{kind} {name}",
                    f"{pct(d, 0.5):.1f}", f"{pct(d, 0.99):.1f}",
                    f"{pct(v, 0.5):.1f}", f"{pct(v, 0.99):.1f}",
                    f"{statistics.median(added):+.1f}", f"{pct(added, 0.99):+.1f}",
                ])
    return rows


def table(rows: list[list[str]]) -> str:
    head = ["requests", "vLLM p50 ms", "vLLM p99 ms", "via API p50 ms", "via API p99 ms",
            "added p50 ms", "added p99 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    start = text.find("## Serving")
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    RESULTS.write_text(text.rstrip() + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vllm-url", help="an already running vLLM (…/v1) serving the model as 'smollm2'")
    ap.add_argument("--model-dir", type=Path, default=ROOT / ".models" / "smollm2-135m-instruct")
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vraagbaak-bench-serving-"))
    with ExitStack() as stack:
        vllm_url = args.vllm_url
        vllm_start = None
        if vllm_url is None:
            port = free_port()
            extra = [] if cpu_has("avx512f") else ["--enforce-eager"]
            proc = stack.enter_context(process(
                [str(ROOT / "scripts" / "vllm-cpu"), "serve", str(args.model_dir), "--port", str(port),
                 "--served-model-name", SERVED, "--", *extra], tmp / "vllm.log"))
            vllm_url = f"http://127.0.0.1:{port}/v1"
            vllm_start = wait_ready(f"{vllm_url}/models", proc, 900, tmp / "vllm.log")
        api_port = free_port()
        env = dict(os.environ,
                   VRAAGBAAK_GENERATOR__BACKEND="openai", VRAAGBAAK_GENERATOR__BASE_URL=vllm_url,
                   VRAAGBAAK_GENERATOR__SERVED_MODEL_NAME=SERVED,
                   VRAAGBAAK_GENERATOR__MODEL_PATH=str(args.model_dir),
                   VRAAGBAAK_SERVER__ALLOW_PASSTHROUGH="true", VRAAGBAAK_SERVER__PORT=str(api_port),
                   VRAAGBAAK_SERVER__LOG_LEVEL="warning",
                   VRAAGBAAK_DATA_DIR=str(tmp / "data"), VRAAGBAAK_STORE__PATH=str(tmp / "data" / "edge"),
                   VRAAGBAAK_INGEST__STATE_PATH=str(tmp / "data" / "state.sqlite"),
                   VRAAGBAAK_AUDIT__PATH=str(tmp / "data" / "audit.jsonl"))
        api = stack.enter_context(process([str(Path(sys.executable).parent / "vraagbaak"), "serve"],
                                          tmp / "api.log", env))
        api_url = f"http://127.0.0.1:{api_port}"
        wait_ready(f"{api_url}/healthz", api, 300, tmp / "api.log")
        rows = run(vllm_url, api_url, args.requests, args.max_tokens, args.warmup)

    cmd = "python benchmarks/serving.py " + " ".join(sys.argv[1:])
    cpu = platform.processor() or platform.machine()
    notes = [
        f"Command: `{cmd.strip()}`",
        "",
        f"{args.requests} interleaved request pairs per row (after {args.warmup} warm-up pairs), greedy, "
        f"max_tokens={args.max_tokens}, one user message, sequential; API with `retrieval: false` "
        "(server.allow_passthrough), generator.backend=openai, audit log on. "
        "'added' is the median (p99) of per-pair differences via API minus direct. "
        f"vLLM CPU ({'compiled' if cpu_has('avx512f') else '--enforce-eager, AVX2-only CPU'}), "
        f"{os.cpu_count()} cores ({cpu}), other work on the machine at the same time."
        + (f" vLLM start-up: {vllm_start:.0f} s." if vllm_start is not None else ""),
    ]
    section = "## Serving\n\n" + "\n".join(notes) + "\n\n" + table(rows) + "\n"
    print(section)
    if not args.no_write:
        write_results(section)


if __name__ == "__main__":
    main()
