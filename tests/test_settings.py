"""One typed settings object: YAML, env overrides, clear errors, refusal of unsafe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vraagbaak_core.settings import ConfigError, load_settings


def test_default_config_is_the_embedded_default() -> None:
    s = load_settings()
    assert s.store.backend == "edge" and s.generator.backend == "extractive"
    assert s.server.host == "127.0.0.1" and s.auth.mode == "insecure-dev"
    s.check_serving_safety()  # allowed: loopback only


def test_production_example_loads_and_needs_its_secrets_from_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1]
    s = load_settings(root / "configs" / "production.example.yaml")
    assert s.store.backend == "qdrant" and s.store.url == "http://qdrant:6333"
    assert s.generator.backend == "openai" and s.auth.mode == "oidc"
    monkeypatch.setenv("VRAAGBAAK_STORE__API_KEY", "changethis")
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(root / "configs" / "production.example.yaml").check_serving_safety()


def test_env_overrides_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_RETRIEVAL__MODE", "sparse")
    monkeypatch.setenv("VRAAGBAAK_SERVER__PORT", "9123")
    s = load_settings()
    assert s.retrieval.mode == "sparse" and s.server.port == 9123
    assert s.retrieval.top_k == 4  # untouched fields keep the YAML value


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("store:\n  backend: postgres\n", ["store.backend", "'edge' or 'qdrant'", "postgres"]),
        ("retrieval:\n  mode: fuzzy\n", ["retrieval.mode", "'dense', 'sparse' or 'hybrid'"]),
        ("ingest:\n  default_classification: topsecret\n", ["ingest.default_classification", "openbaar"]),
        ("server:\n  prot: 80\n", ["server.prot", "Extra inputs are not permitted"]),
        ("store:\n  backend: qdrant\n", ["store.url is required"]),
    ],
)
def test_bad_config_names_the_field_and_allowed_values(tmp_path: Path, yaml_text: str, expected: list[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    for part in expected:
        assert part in str(err.value)


def test_cli_reports_a_bad_config_and_exits_2(tmp_path: Path) -> None:
    from serving.cli.main import app

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("generator:\n  backend: gpt\n")
    result = CliRunner().invoke(app, ["models", "verify", str(tmp_path), "--config", str(cfg)])
    assert result.exit_code == 2
    assert "generator.backend" in result.output and "'extractive', 'transformers' or 'openai'" in result.output


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/vraagbaak.yaml")


def test_api_keys_must_be_stored_hashed(tmp_path: Path) -> None:
    cfg = tmp_path / "keys.yaml"
    cfg.write_text("auth:\n  mode: api-key\n  api_keys:\n    - key_sha256: my-plain-key\n      user_id: x\n")
    with pytest.raises(ConfigError, match="sha256"):
        load_settings(cfg)


def test_placeholder_database_passwords_are_refused() -> None:
    """The PostgreSQL password sits inside audit.dsn / catalog.url (from the Secret): a placeholder there
    is refused like any other key; a DSN without a password (libpq's PGPASSWORD or passfile) is not."""
    safe = {"auth": {"mode": "insecure-dev"}, "server": {"host": "127.0.0.1"}}
    for dsn in ("host=postgres dbname=vraagbaak user=vraagbaak password=changethis",
                "postgresql://vraagbaak:Changeme@postgres:5432/vraagbaak", "host=postgres password=''"):
        s = load_settings(None, audit={"backend": "postgresql", "dsn": dsn}, **safe)
        with pytest.raises(ConfigError, match="audit.dsn: the database password is a placeholder"):
            s.check_serving_safety()
    s = load_settings(None, catalog={"url": "postgresql://vraagbaak:changethis@postgres:5432/vraagbaak"}, **safe)
    with pytest.raises(ConfigError, match="catalog.url: the database password is a placeholder"):
        s.check_serving_safety()
    for ok in ({"audit": {"backend": "postgresql", "dsn": "host=postgres user=vraagbaak password=p-4nRt7YwQ"}},
               {"audit": {"backend": "postgresql", "dsn": "host=postgres user=vraagbaak"}},
               {"catalog": {"url": "postgresql://vraagbaak@postgres:5432/vraagbaak"}}):
        load_settings(None, **ok, **safe).check_serving_safety()
