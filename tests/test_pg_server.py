"""The PostgreSQL test server itself: starts as a non-root user on loopback, gives isolated databases."""

from __future__ import annotations

import os

import psycopg
from pg_server import PgServer


def test_server_answers_on_loopback_with_password(pg_server: PgServer, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("select current_user, inet_server_addr()::text, current_setting('is_superuser')").fetchone()
        assert row is not None
        assert row[0] == PgServer.user
        assert row[1].startswith("127.0.0.1")
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (1)")
    # the server process does not run as root, even when the tests do
    assert pg_server.proc is not None
    assert os.stat(f"/proc/{pg_server.proc.pid}").st_uid != 0
    # a wrong password is refused (scram auth, not trust)
    bad = pg_dsn.replace(f"password={pg_server.password}", "password=wrong")
    try:
        psycopg.connect(bad, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        assert "password" in str(err).lower()
    else:
        raise AssertionError("a wrong password was accepted")


def test_each_test_gets_an_empty_database(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        n = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()
        assert n == (0,)
