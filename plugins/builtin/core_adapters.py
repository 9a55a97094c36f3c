"""The adapters Fathom ships: embedded defaults and the scale-out engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from fathom.plugins.adapters import AdapterSpec
from fathom.plugins.hookspecs import hookimpl


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqliteOptions(_Options):
    path: Path | None = None  # default: <data_dir>/fathom.db


class PostgresOptions(_Options):
    url: str
    pool_size: int = 10


class ChdbOptions(_Options):
    path: Path | None = None  # default: <data_dir>/chdb
    database: str = "fathom"


class ClickHouseOptions(_Options):
    url: str
    database: str = "fathom"
    cluster: str | None = None


class LocalBlobOptions(_Options):
    path: Path | None = None  # default: <data_dir>/blobs
    fsync: bool = True


class LocalQueueOptions(_Options):
    path: Path | None = None  # default: <data_dir>/queue.sqlite3
    max_attempts: int = 6
    backoff_base_seconds: float = 5.0


def _sqlite(options: SqliteOptions, settings: Any) -> Any:
    from fathom.adapters.storage.sql.store import SqlRecordStore

    path = options.path or settings.data_dir / "fathom.db"
    return SqlRecordStore(f"sqlite+aiosqlite:///{Path(path).absolute()}")


def _postgres(options: PostgresOptions, settings: Any) -> Any:
    from fathom.adapters.storage.sql.store import SqlRecordStore

    url = options.url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+asyncpg://" + url[len(prefix) :]
    return SqlRecordStore(url, pool_size=options.pool_size)


def _chdb(options: ChdbOptions, settings: Any) -> Any:
    from fathom.adapters.storage.clickhouse.store import ClickHouseTelemetryStore

    path = Path(options.path or settings.data_dir / "chdb").absolute()
    return ClickHouseTelemetryStore(f"chdb://{path}", database=options.database)


def _clickhouse(options: ClickHouseOptions, settings: Any) -> Any:
    from fathom.adapters.storage.clickhouse.store import ClickHouseTelemetryStore

    return ClickHouseTelemetryStore(options.url, database=options.database, cluster=options.cluster)


def _local_blob(options: LocalBlobOptions, settings: Any) -> Any:
    from fathom.adapters.blob.local import LocalBlobStore

    return LocalBlobStore(Path(options.path or settings.data_dir / "blobs"), fsync=options.fsync)


def _local_queue(options: LocalQueueOptions, settings: Any) -> Any:
    from fathom.adapters.queue.local import LocalDurableQueue

    return LocalDurableQueue(
        Path(options.path or settings.data_dir / "queue.sqlite3"),
        max_attempts=options.max_attempts,
        backoff_base_seconds=options.backoff_base_seconds,
    )


@hookimpl
def fathom_adapters() -> list[AdapterSpec]:
    return [
        AdapterSpec("records", "sqlite", SqliteOptions, _sqlite, "SQLite file (embedded default)"),
        AdapterSpec("records", "postgres", PostgresOptions, _postgres, "PostgreSQL"),
        AdapterSpec("telemetry", "chdb", ChdbOptions, _chdb, "embedded ClickHouse (chDB)"),
        AdapterSpec("telemetry", "clickhouse", ClickHouseOptions, _clickhouse, "ClickHouse HTTP"),
        AdapterSpec("blob", "local", LocalBlobOptions, _local_blob, "local files"),
        AdapterSpec("queue", "local", LocalQueueOptions, _local_queue, "durable SQLite queue"),
    ]
