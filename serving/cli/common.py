"""What every ``vraagbaak`` command shares: the ``--config`` option and ``boot`` (settings, egress guard,
logging). In a module of its own so that the command modules and the main CLI never import each other."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.settings import ConfigError, Settings, load_settings

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="settings YAML (default configs/default.yaml)")]


def boot(config: Path | None) -> Settings:
    """Load settings (failing with the field named) and install the egress guard first thing."""
    try:
        settings = load_settings(config)
    except ConfigError as err:
        typer.secho(str(err), fg="red", err=True)
        raise typer.Exit(2) from None
    from vraagbaak_core.egress import startup_guard

    startup_guard(settings, build_audit_log(settings))
    _logging(settings)
    return settings


def _logging(settings: Settings) -> None:
    import logging

    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.server.log_level.upper())
    for noisy in ("httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
