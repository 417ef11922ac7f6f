"""A real, throw-away PostgreSQL server for tests and benchmarks (no fake, no system cluster).

``PgServer`` runs ``initdb`` in a fresh temp dir and starts ``postgres`` on a free loopback port with
password (SCRAM) authentication. PostgreSQL refuses to run as root, and CI runs as root, so when this
process is root the server runs as the ``postgres`` system user (created by Debian's package) or, failing
that, ``nobody``. The binaries come from Debian's ``postgresql`` package (``scripts/install-postgres``,
called by ``make test``).

Pytest fixtures (imported by ``conftest.py``):

- ``pg_server`` (session): the running server; ``pg_server.dsn(db)`` / ``pg_server.url(db)``.
- ``pg_dsn`` (function): a fresh, empty database of its own, dropped afterwards; a libpq DSN string.

Without binaries the fixtures skip, except where ``CI`` or ``VRAAGBAAK_REQUIRE_POSTGRES`` is set
(``make test`` sets it): there they fail, so a CI run never silently skips its PostgreSQL legs.
A server that is installed but does not start is always a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ENV = ("CI", "VRAAGBAAK_REQUIRE_POSTGRES")


class PgUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (Debian: /usr/lib/postgresql/<ver>/bin)."""
    env = os.environ.get("VRAAGBAAK_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "postgres").is_file():
            return Path(c)
    raise PgUnavailable("PostgreSQL server binaries (initdb, postgres) not found: run scripts/install-postgres")


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name.split(".")[0])
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


class PgServer:
    """One PostgreSQL server in a temp dir. ``durable=False`` (tests) turns fsync off for speed;
    benchmarks use ``durable=True`` so commits really reach the disk."""

    user = "vraagbaak"

    def __init__(self, durable: bool = False, max_connections: int = 100) -> None:
        self.bindir = find_bindir()
        self.durable = durable
        self.max_connections = max_connections
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.account = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="vb-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    # --- lifecycle ---

    def _popen_kw(self) -> dict[str, object]:
        kw: dict[str, object] = {"cwd": str(self.root)}
        if self.account is not None:
            kw.update(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        return kw

    def start(self, timeout_s: float = 60.0) -> PgServer:
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.account is not None:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        pwfile.chmod(0o600)
        init = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile),
             "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8", "--no-instructions"],
            capture_output=True, check=False, **self._popen_kw(),  # type: ignore[call-overload]
        )
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr.decode(errors='replace')[-2000:]}")
        last = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind: try another
            self.port = _free_port()
            last = self._launch(timeout_s)
            if not last:
                return self
        raise RuntimeError(f"postgres did not start: {last}")

    def _launch(self, timeout_s: float) -> str:
        args = [
            str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
            "-c", f"max_connections={self.max_connections}", "-c", "shared_buffers=64MB",
        ]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, **self._popen_kw())  # type: ignore[call-overload]
        finally:
            logf.close()
        deadline = time.monotonic() + timeout_s
        import psycopg

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return f"exited: {self.log_tail()}"
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return ""
            except psycopg.OperationalError:
                time.sleep(0.2)
        self.stop()
        return f"not ready after {timeout_s:.0f} s: {self.log_tail()}"

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # --- addresses ---

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string (psycopg 3 takes it as is)."""
        return f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} dbname={dbname}"

    def url(self, dbname: str = "postgres", driver: str = "postgresql") -> str:
        """A URL; ``driver="postgresql+psycopg"`` gives the SQLAlchemy 2 form."""
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    # --- databases ---

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _must_have_postgres() -> bool:
    return any(os.environ.get(k) for k in REQUIRE_ENV)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = PgServer()
    except PgUnavailable as err:
        if _must_have_postgres():
            pytest.fail(f"{err} (required here: CI / VRAAGBAAK_REQUIRE_POSTGRES is set)")
        pytest.skip(str(err))
    try:
        server.start()
    except Exception:
        server.cleanup()
        raise
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture()
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """A DSN for a fresh, empty database of this test's own."""
    name = pg_server.create_database()
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name)
