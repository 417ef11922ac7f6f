#!/usr/bin/env bash
# The whole staff path with no network but loopback: run by tests/test_netns_e2e.py via
# scripts/netns-run. Writes its results to $OUT_DIR.
set -euo pipefail
VB="$VENV/bin/vraagbaak"
ip -o link show | awk -F': ' '{print $2}' > "$OUT_DIR/interfaces.txt"
"$VB" models prepare > "$OUT_DIR/prepare.txt"
"$VB" ingest examples/docs --json > "$OUT_DIR/ingest.json"
"$VB" ask "Hoe lang moet ik handalcohol inwrijven?" --json > "$OUT_DIR/ask.json"
"$VB" serve > "$OUT_DIR/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
"$VENV/bin/python" - <<'PY'
import json, os, time, httpx
base = f"http://127.0.0.1:{os.environ['VRAAGBAAK_SERVER__PORT']}"
for _ in range(600):
    try:
        if httpx.get(base + "/healthz", timeout=1).status_code == 200:
            break
    except httpx.TransportError:
        time.sleep(0.2)
body = {"model": "vraagbaak", "messages": [{"role": "user", "content": "Wat zijn de bezoektijden op de verpleegafdeling?"}]}
r = httpx.post(base + "/v1/chat/completions", json=body, timeout=600)
open(os.path.join(os.environ["OUT_DIR"], "chat.json"), "w").write(r.text)
PY
"$VB" audit verify > "$OUT_DIR/verify.txt"
