"""``vraagbaak auth``: credentials (IT)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Credentials.", no_args_is_help=True)


@app.command("hash-key")
def auth_hash_key(key: str = typer.Argument(..., help="the API key to hash (give it to the user, store the hash)")
                  ) -> None:
    """Print the ``sha256:`` form of an API key for ``auth.api_keys[].key_sha256``."""
    from serving.http.auth import hash_key

    typer.echo(hash_key(key))
