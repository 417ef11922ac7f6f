"""``vraagbaak reindex``: re-embed every stored chunk with the configured embedder, then switch.

Flow when changing the embedding model:

1. edit ``embedder`` in the config (the running API keeps its own settings);
2. ``vraagbaak reindex``: builds ``<store>--<embedder>`` next to the current collection, resumable
   (rerun it after a kill), then switches atomically (Edge pointer file / Qdrant alias);
   on the embedded default with the API running, the shard is the API's: use
   ``vraagbaak reindex --api http://127.0.0.1:8000`` to run it inside the API (writes get 409 with
   Retry-After meanwhile; at the switch the API serves the new collection and drops the old one);
3. restart the API (it now opens the new collection with the new embedder);
4. ``vraagbaak reindex --drop-old`` removes the old collection (not needed after ``--api``).

Exit codes: 0 done (or nothing to do), 1 the reindex failed (the current collection is
untouched), 2 bad configuration, 3 the store is open in another process.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer

from serving.cli.common import ConfigOpt, boot


def _line(s: Any) -> None:
    print(f"reindex: {s.copied + s.already}/{s.total} chunks in {s.target} "
          f"({s.copied} embedded, {s.already} already there)", flush=True)


def reindex_command(
    config: ConfigOpt = None,
    batch: Annotated[int, typer.Option(help="chunks per page (read, embed, write)", min=1)] = 64,
    drop_old: Annotated[bool, typer.Option("--drop-old", help="remove old collections after the switch")] = False,
    api: Annotated[str | None, typer.Option(help="run inside the API at this URL (its store is open there)")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="VRAAGBAAK_ADMIN_KEY", help="admin API key for --api")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the final status as JSON")] = False,
) -> None:
    """Re-embed every stored document with the configured embedder into a new collection and switch to it."""
    settings = boot(config)
    if api:
        if drop_old:
            typer.echo("--drop-old with --api: the API drops the old collection itself after the switch")
        status = _remote(api, api_key, settings.embedder.model_dump(mode="json"), batch)
    else:
        status = _local(settings, batch, drop_old)
    if as_json:
        typer.echo(json.dumps(status, ensure_ascii=False, indent=2))
    else:
        typer.echo(status.get("message") or "reindex done")
        for d in status.get("dropped") or []:
            typer.echo(f"dropped old collection {d}")


def _local(settings: Any, batch: int, drop_old: bool) -> dict[str, Any]:
    from retrieval.embedders import build_embedder
    from retrieval.reindex import ReindexError, reindex
    from retrieval.stores import build_store
    from retrieval.stores.edge import StoreBusy
    from vraagbaak_core.errors import EmbedderError
    from vraagbaak_core.settings import PROJECT_ROOT

    try:
        source = build_store(settings)
    except StoreBusy as err:
        typer.secho(f"{err}. With the API running, run: vraagbaak reindex --api http://"
                    f"{settings.server.host}:{settings.server.port}", fg="red", err=True)
        raise typer.Exit(3) from None
    try:
        embedder = build_embedder(settings.embedder, PROJECT_ROOT)
        status = reindex(source, embedder, batch=batch, progress=_line, drop_old=drop_old)
    except (ReindexError, EmbedderError) as err:
        typer.secho(f"reindex failed, the current collection is untouched: {err}", fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        source.close()
    return asdict(status)


def _remote(api: str, api_key: str | None, embedder: dict[str, Any], batch: int) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = api.rstrip("/") + "/api/admin/reindex"
    with httpx.Client(headers=headers, timeout=30) as client:
        r = client.post(url, json={"embedder": embedder, "batch": batch})
        if r.status_code == 409:
            print("reindex: one is already running in the API; following it", flush=True)
        elif r.status_code != 202:
            typer.secho(f"{url} answered {r.status_code}: {r.text[:500]}", fg="red", err=True)
            raise typer.Exit(1)
        last, resets = "", 0
        while True:
            try:
                r = client.get(url)
            except httpx.TransportError:  # a kept-alive connection the server closed as we sent: ask again
                resets += 1
                if resets > 5:
                    raise
                time.sleep(1)
                continue
            if r.status_code == 429:  # the admin's rate limit: wait as told
                time.sleep(float(r.headers.get("retry-after", "5")))
                continue
            if r.status_code != 200:
                typer.secho(f"{url} answered {r.status_code}: {r.text[:500]}", fg="red", err=True)
                raise typer.Exit(1)
            view = r.json()
            line = f"reindex: {view['copied'] + view['already']}/{view['total']} chunks in {view['target']}"
            if line != last and view["target"]:
                print(line, flush=True)
                last = line
            if view["state"] == "failed":
                typer.secho(f"reindex failed in the API, the current collection is untouched: {view['error']}",
                            fg="red", err=True)
                raise typer.Exit(1)
            if view["state"] == "done":
                view["message"] = ((view.get("message") or "") + "; set this embedder in the API's config before "
                                   "its next restart")
                return dict(view)
            time.sleep(float(os.environ.get("VRAAGBAAK_REINDEX_POLL_S", "2")))


