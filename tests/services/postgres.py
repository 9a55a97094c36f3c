"""Session fixtures for postgres (see tests/services/__init__.py).

`postgres_url` starts one throwaway PostgreSQL cluster for the whole session (initdb + pg_ctl
as the `postgres` user, TCP on 127.0.0.1 only, fsync off) and `fresh_postgres_url` gives a
test its own empty database on it, so migrations always start from nothing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.support import unavailable

PREFERRED_PORT = 15432
# When another test session on this machine already holds the preferred port, the next free
# one in this range is used instead (still below Linux's ephemeral range, 32768+).
PORT_RANGE = range(PREFERRED_PORT, PREFERRED_PORT + 100)
TEMPLATE_DB = "fathom_test"


@dataclass(frozen=True, slots=True)
class PostgresServer:
    host: str
    port: int
    bin_dir: Path

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://postgres@{self.host}:{self.port}/{database}"


def _bin_dir() -> Path | None:
    override = os.environ.get("PGBIN")
    if override:
        return Path(override)
    found = [
        path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()
    ]
    found.sort(
        key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()]
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(candidates: range) -> int:
    for port in candidates:
        if _port_is_free(port):
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {candidates.start}-{candidates.stop - 1}")


def _as_postgres_user() -> list[str]:
    # initdb refuses to run as root; runuser needs no PAM prompt (unlike `su -`).
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        unavailable("running as root but there is no 'postgres' user to own the cluster")
    return ["runuser", "-u", "postgres", "--"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphans(prefix: str) -> Iterator[Path]:
    """Folders of servers whose test session died without its teardown (killed by a
    timeout, say): each fixture writes its session's pid into `owner.pid`."""
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _alive(owner):
            yield folder


def _stop_orphans(bin_dir: Path, prefix: list[str]) -> None:
    for folder in orphans("fathom-pg-"):
        if (folder / "data" / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate"]
                + ["-w", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed; see {log}:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401  (the fixtures create databases with it)
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[scale]')")
    assert bin_dir is not None
    prefix = _as_postgres_user()
    _stop_orphans(bin_dir, prefix)
    # Not pytest's tmp_path: its parents are 0700 root, which the postgres user cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="fathom-pg-"))
    folder.chmod(0o755)
    (folder / "owner.pid").write_text(str(os.getpid()))
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    log = folder / "server.log"
    port = free_port(PORT_RANGE)
    started = False
    try:
        _run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            folder / "initdb.log",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60"]
            + ["-o", options, "start"],
            folder / "pg_ctl.log",
        )
        started = True
        server = PostgresServer("127.0.0.1", port, bin_dir)
        _execute(server, f'CREATE DATABASE "{TEMPLATE_DB}"')
        yield server
    except RuntimeError as exc:
        unavailable(f"PostgreSQL could not be started: {exc}")
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run(
                    [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                    folder / "pg_ctl.log",
                )
        shutil.rmtree(folder, ignore_errors=True)


def _execute(server: PostgresServer, statement: str) -> None:
    import psycopg

    # CREATE/DROP DATABASE cannot run inside a transaction block.
    with psycopg.connect(
        host=server.host, port=server.port, user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database shared by the whole session: `postgresql+asyncpg://postgres@127.0.0.1:…`."""
    return postgres_server.url(TEMPLATE_DB)


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty database of this test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    # FILE_COPY: with fsync off, copying template0's files beats WAL-logging every block.
    _execute(postgres_server, f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
    yield postgres_server.url(name)
    # FORCE: a test that failed mid-way may leave a pooled connection open.
    _execute(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
