"""``vraagbaak serve``: the API and both pages with uvicorn; ``--demo`` asks a sample question once up."""

from __future__ import annotations

import sys
import threading
import time

import typer

from serving.cli.common import ConfigOpt, boot
from vraagbaak_core.settings import ConfigError

DEMO_QUESTION = "Wat zijn de bezoektijden op de verpleegafdeling?"


def serve(config: ConfigOpt = None,
          demo: bool = typer.Option(False, help="once up, ask a sample question and print a curl line"),
          host: str | None = typer.Option(None, "--host", help="bind address (default server.host)"),
          port: int | None = typer.Option(None, "--port", min=1, max=65535, help="port (default server.port)"),
          ) -> None:
    """Run the API and the staff page (OpenAI-compatible chat, documents, audit) with uvicorn."""
    settings = boot(config)
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    try:
        settings.check_serving_safety()
    except ConfigError as err:
        typer.secho(f"refusing to start: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    import uvicorn

    from serving.app import create_app

    if settings.store.backend == "edge":  # fail here, clearly, not inside uvicorn's lifespan
        from retrieval.stores.edge_lock import ShardLock
        from vraagbaak_core.errors import StoreLocked

        try:
            ShardLock(settings.resolve(settings.store.path)).release()
        except StoreLocked as err:
            typer.secho(f"refusing to start: {err}", fg="red", err=True)
            raise typer.Exit(2) from None
    host, port = settings.server.host, settings.server.port
    if demo:
        threading.Thread(target=_demo, args=(host, port), daemon=True).start()
    # proxy_headers off: uvicorn would trust X-Forwarded-For from 127.0.0.1; server.trusted_proxies decides
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False, proxy_headers=False)


def _demo(host: str, port: int) -> None:
    import httpx

    base = f"http://{host}:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.5)
    body = {"model": "vraagbaak", "messages": [{"role": "user", "content": DEMO_QUESTION}]}
    try:
        r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=300)
        msg = r.json()["choices"][0]["message"]
    except (httpx.HTTPError, KeyError, ValueError) as err:
        print(f"demo question failed: {err}", file=sys.stderr, flush=True)
        return
    lines = [f"\n=== Vraag: {DEMO_QUESTION}", f"=== Antwoord: {msg['content']}"]
    for c in msg.get("citations", []):
        where = f", p. {c['page']}" if c.get("page") is not None else ""
        where += f", § {c['section']}" if c.get("section") else ""
        lines.append(f"    [{c['n']}] {c['title']}{where} — {c['source']}")
    lines.append("\nTry it yourself:")
    lines.append(
        f"  curl -s {base}/v1/chat/completions -H 'Content-Type: application/json' "
        "-d '{\"model\":\"vraagbaak\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"Hoe lang moet ik mijn handen wassen?\"}]}'"
    )
    lines.append(f"  (API docs: {base}/docs — stop with Ctrl-C)")
    lines.append(f"\nStaff page / pagina voor medewerkers: {base}/\n")
    print("\n".join(lines), flush=True)
