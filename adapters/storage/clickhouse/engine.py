"""Engines: a clickhouse-connect client and the one worker thread every call on it runs on.

The store's calls all run on that thread (`ClickHouseTelemetryStore._run`): chDB has no async
client, so the event loop must not block on it, and calls must not interleave on a handle.
chDB allows one engine per process: stores on the same chDB path share one `Engine` through a
reference-counted registry here (`acquire_chdb`, `release_chdb`); opening a second, different
chDB path while one is open raises `ConfigurationError`. A server (`http(s)://`) gets an
`Engine` per store.

Importing this module also keeps clickhouse-connect from importing pandas (see below).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver import options as _client_options
from clickhouse_connect.driver.client import Client

from fathom.core.domain.errors import ConfigurationError

# chDB installs pandas, and clickhouse-connect imports it on the first insert to check
# whether the data is a DataFrame: ~47 MiB of a process that never uses it (idle RSS is a
# target). The client's own "pandas is not installed" state skips those checks.
_client_options.pd = None
_client_options.pd_time_test = None


class Engine:
    """A client and the one worker thread every call on it runs on."""

    def __init__(self, key: str, factory: Callable[[], Client]) -> None:
        self.key = key
        self.refs = 0
        self._factory = factory
        self._client: Client | None = None
        # Keyed by id() of the module's settings dicts, which live as long as the process.
        self._settings: dict[int, dict[str, Any]] = {}
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"clickhouse-{key[-24:]}"
        )

    def client(self) -> Client:
        # Worker thread only. Created on first use, so constructing a store never blocks,
        # and retried after a failure (a server that was down at start-up).
        if self._client is None:
            self._client = self._factory()
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._settings.clear()

    def settings(self, client: Client, wanted: dict[str, Any]) -> dict[str, Any]:
        """`wanted` without the settings this engine does not know (an older server), which it
        would reject; the query settings are tuning only. Worker thread only."""
        known = self._settings.get(id(wanted))
        if known is None:
            known = {k: v for k, v in wanted.items() if k in client.server_settings}
            self._settings[id(wanted)] = known
        return known


_CHDB_LOCK = threading.Lock()
_CHDB_ENGINES: dict[str, Engine] = {}  # at most one entry: chDB allows one engine per process


def _chdb_key(dsn: str) -> str:
    rest = dsn[len("chdb://") :].split("?", 1)[0]
    if rest in ("", "memory", ":memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"chDB DSN {dsn!r}: use chdb:///absolute/path (three slashes) or chdb:// for memory"
        )
    return os.path.realpath(rest)


def acquire_chdb(dsn: str) -> Engine:
    key = _chdb_key(dsn)
    with _CHDB_LOCK:
        engine = _CHDB_ENGINES.get(key)
        if engine is None:
            if _CHDB_ENGINES:
                (other,) = _CHDB_ENGINES
                raise ConfigurationError(
                    f"chDB allows one engine per process: {other!r} is open, cannot open {key!r}"
                )
            path = None if key == ":memory:" else key

            def factory() -> Client:
                # Any engine start failure (path locked by another process, an engine opened
                # outside this registry) is a setup error.
                try:
                    if path is None:
                        return clickhouse_connect.get_client(interface="chdb", tz_mode="aware")
                    return clickhouse_connect.get_client(dsn=f"chdb://{path}", tz_mode="aware")
                except Exception as exc:
                    raise ConfigurationError(f"cannot open chDB engine at {key!r}: {exc}") from exc

            engine = Engine(key, factory)
            _CHDB_ENGINES[key] = engine
        engine.refs += 1
        return engine


def release_chdb(engine: Engine) -> bool:
    """Drop one reference; True when the caller must close the engine."""
    with _CHDB_LOCK:
        engine.refs -= 1
        if engine.refs > 0:
            return False
        _CHDB_ENGINES.pop(engine.key, None)
        return True
