"""Load on the live API (issue 11 item 21): N concurrent streaming chat clients (N = 1, 8, 32) plus
uploads at the same time, against `vraagbaak serve` on loopback (its own process), embedded default.

Per level: p50/p95 time to first token (first content delta), requests/s, errors by status (only
the designed 429/503 are allowed), and /healthz p50/p99 measured during the load by a prober in
its own process (so the clients' event loop, busy with 32 streams, does not delay its probes; with
``--prober inloop`` it shares the clients' loop, as before), and the machine's 1-minute load average.
Bounded: each client sends at most --requests questions and each level stops at --level-seconds.
With --vllm URL the server uses the OpenAI-compatible generator against that vLLM server instead.

    .venv/bin/python benchmarks/load.py                 # embedded default
    .venv/bin/python benchmarks/load.py --vllm http://127.0.0.1:8001/v1 --served-model-name smollm2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "Hoe vaak moet ik mijn handen desinfecteren?",
    "Wat moet ik doen bij een prikaccident?",
    "Hoe lang mag een infuus blijven zitten?",
    "Wat zijn de bezoektijden?",
    "How do I report an incident?",
]
DESIGNED = {429, 503}


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


async def _chat(client: httpx.AsyncClient, q: str, max_tokens: int, ttfts: list[float], errors: Counter[str]) -> None:
    t0 = time.perf_counter()
    body = {"model": "vraagbaak", "stream": True, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": q}]}
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                errors[str(r.status_code)] += 1
                return
            first = None
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    ev = json.loads(line[6:])
                    if "error" in ev:
                        errors["stream-error"] += 1
                        return
                    delta = ev["choices"][0]["delta"].get("content")
                    if delta and first is None:
                        first = time.perf_counter() - t0
            if first is not None:
                ttfts.append(first)
            errors["ok"] += 1
    except httpx.HTTPError as err:
        errors[type(err).__name__] += 1


async def _client(base: str, idx: int, n_req: int, max_tokens: int, deadline: float, ttfts: list[float],
                  errors: Counter[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=300, trust_env=False) as c:
        for i in range(n_req):
            if time.monotonic() > deadline:
                return
            await _chat(c, QUESTIONS[(idx + i) % len(QUESTIONS)], max_tokens, ttfts, errors)


async def _uploader(base: str, deadline: float, stop: asyncio.Event, errors: Counter[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=300, trust_env=False) as c:
        i = 0
        while not stop.is_set() and time.monotonic() < deadline:
            text = f"Werkinstructie {i}: de dienstwissel is om {7 + i % 10}:00 uur. " * 20
            r = await c.post("/api/documents", files={"file": (f"load-{i}.txt", text.encode())},
                             data={"groups": "iedereen"})
            errors[f"upload-{r.status_code}"] += 1
            i += 1
            await asyncio.sleep(0.5)


async def _prober(base: str, stop: asyncio.Event, lat: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = await c.get("/healthz")
            if r.status_code == 200:
                lat.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)


def _probe_process(base: str, stop: Any, out: Any) -> None:
    """/healthz every 50 ms from its own process, until ``stop`` is set; latencies onto ``out``."""
    lat: list[float] = []
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = c.get("/healthz")
            if r.status_code == 200:
                lat.append(time.perf_counter() - t0)
            time.sleep(0.05)
    out.put(lat)


async def _level(base: str, n: int, n_req: int, max_tokens: int, seconds: float,
                 prober: str = "process") -> dict[str, object]:
    ttfts: list[float] = []
    errors: Counter[str] = Counter()
    hz: list[float] = []
    stop = asyncio.Event()
    deadline = time.monotonic() + seconds
    ctx = multiprocessing.get_context("spawn")
    pstop, pout = ctx.Event(), ctx.Queue()
    if prober == "process":
        proc = ctx.Process(target=_probe_process, args=(base, pstop, pout), daemon=True)
        proc.start()
        probe = None
    else:
        probe = asyncio.create_task(_prober(base, stop, hz))
    t0 = time.perf_counter()
    up = asyncio.create_task(_uploader(base, deadline, stop, errors))
    await asyncio.gather(*(_client(base, i, n_req, max_tokens, deadline, ttfts, errors) for i in range(n)))
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    stop.set()
    if probe is None:
        pstop.set()
        hz = await asyncio.to_thread(pout.get, True, 60)
        proc.join(10)
        await up
    else:
        await asyncio.gather(probe, up)
    statuses = {k: v for k, v in errors.items() if k not in ("ok",) and not k.startswith("upload-2")}
    undesigned = {k: v for k, v in statuses.items() if not (k.isdigit() and int(k) in DESIGNED)
                  and k != "upload-503" and k != "upload-429"}
    return {
        "clients": n, "ok": errors["ok"], "rps": errors["ok"] / wall, "wall_s": wall,
        "ttft_p50": _pct(ttfts, 50), "ttft_p95": _pct(ttfts, 95),
        "uploads_ok": sum(v for k, v in errors.items() if k.startswith("upload-2")),
        "errors": statuses, "undesigned": undesigned,
        "healthz_p50_ms": _pct(hz, 50) * 1000, "healthz_p99_ms": _pct(hz, 99) * 1000, "healthz_n": len(hz),
        "load1": load1,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--requests", type=int, default=2, help="questions per client per level")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--level-seconds", type=float, default=180)
    ap.add_argument("--vllm", default=None, help="OpenAI-compatible base URL of a running vLLM server")
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--prober", choices=("process", "inloop"), default="process",
                    help="/healthz prober in its own process (default) or in the clients' event loop")
    ap.add_argument("--worker-nice", type=int, default=None, help="server.worker_nice for the server (A/B)")
    ap.add_argument("--server-log", type=Path, default=None,
                    help="write the server's stderr here (with PYTHONASYNCIODEBUG=1: callbacks that block the loop)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vraagbaak-load-"))
    port = _free_port()
    cfg = {
        "data_dir": str(tmp), "store": {"backend": "edge", "path": str(tmp / "edge")},
        "ingest": {"state_path": str(tmp / "state.sqlite")}, "audit": {"path": str(tmp / "audit.jsonl")},
        "auth": {"mode": "insecure-dev", "dev_roles": ["staff", "ingest"], "dev_manages": ["iedereen"]},
        "limits": {"rate_per_minute": 100_000},
        "server": {"host": "127.0.0.1", "port": port}
        | ({} if args.worker_nice is None else {"worker_nice": args.worker_nice}),
    }
    if args.vllm:
        cfg["generator"] = {"backend": "openai", "base_url": args.vllm, "served_model_name": args.served_model_name}
        host = httpx.URL(args.vllm).host
        cfg["egress"] = {"allow_cidrs": [f"{host}/32"]} if host[0].isdigit() and host != "127.0.0.1" else {}
    import yaml

    base_cfg = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    for k, v in cfg.items():
        base_cfg[k] = {**base_cfg.get(k, {}), **v} if isinstance(v, dict) and isinstance(base_cfg.get(k), dict) else v
    path = tmp / "load.yaml"
    path.write_text(yaml.safe_dump(base_cfg))
    vb = str(Path(sys.executable).parent / "vraagbaak")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([vb, "ingest", str(ROOT / "examples" / "docs"), "--config", str(path)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    log = args.server_log.open("w") if args.server_log else subprocess.DEVNULL
    server = subprocess.Popen([vb, "serve", "--config", str(path)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        backend = (base_cfg.get("generator") or {}).get("backend", "extractive")
        leg = f"vLLM {args.vllm}" if args.vllm else f"embedded default (generator {backend}, Qdrant Edge)"
        nice = base_cfg["server"].get("worker_nice", "default")
        print(f"\nload on {leg}; {args.requests} questions/client, max_tokens {args.max_tokens}, uploads alongside; "
              f"prober {args.prober}, server.worker_nice {nice}, {os.cpu_count()} cores")
        print("| clients | ok | req/s | TTFT p50 s | TTFT p95 s | uploads ok | errors by status | undesigned | "
              "/healthz p50 ms | /healthz p99 ms (n) | load avg 1 min |")
        print("|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|", flush=True)
        bad = False
        for n in args.levels.split(","):
            r = asyncio.run(_level(base, int(n), args.requests, args.max_tokens, args.level_seconds, args.prober))
            print(f"| {r['clients']} | {r['ok']} | {r['rps']:.2f} | {r['ttft_p50']:.2f} | {r['ttft_p95']:.2f} | "
                  f"{r['uploads_ok']} | {r['errors'] or '-'} | {r['undesigned'] or 'none'} | "
                  f"{r['healthz_p50_ms']:.1f} | {r['healthz_p99_ms']:.1f} ({r['healthz_n']}) | {r['load1']:.1f} |",
                  flush=True)
            bad = bad or bool(r["undesigned"])
    finally:
        server.terminate()
        server.wait(30)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
