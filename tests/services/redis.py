"""Session fixtures for redis (see tests/services/__init__.py).

`redis_server_url` starts one `redis-server` for the session (no persistence: tests need
none, and appendonly would only slow them down); `redis_url` hands each test the database
flushed, so streams, caches and channels of one test never leak into the next.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.postgres import free_port, orphans
from tests.services.support import stop, unavailable, wait_for_port

PREFERRED_PORT = 16379
# Another test session on this machine may hold the preferred port: take the next free one.
PORT_RANGE = range(PREFERRED_PORT, PREFERRED_PORT + 100)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    try:
        import redis  # noqa: F401  (the adapters and the flush below need it)
    except ImportError:
        unavailable("the redis client is not installed (pip install -e '.[scale]')")
    assert binary is not None
    for orphan in orphans("fathom-redis-"):
        # The server of a session that died without its teardown.
        with contextlib.suppress(OSError, ValueError):
            pid = int((orphan / "server.pid").read_text())
            # Only if that pid is still this server, not a process that reused the number.
            # (redis-server rewrites its command line, but it runs in its --dir).
            if os.readlink(f"/proc/{pid}/cwd") == str(orphan):
                os.kill(pid, signal.SIGTERM)
        shutil.rmtree(orphan, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix="fathom-redis-"))
    (folder / "owner.pid").write_text(str(os.getpid()))
    port = free_port(PORT_RANGE)
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        + ["--daemonize", "no", "--dir", str(folder)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    (folder / "server.pid").write_text(str(process.pid))
    try:
        try:
            wait_for_port(port, timeout=15, process=process)
        except RuntimeError as exc:
            unavailable(f"redis-server could not be started: {exc}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The session's Redis, flushed for this test."""
    import redis

    client = redis.Redis.from_url(redis_server_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server_url
