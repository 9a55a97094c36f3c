"""The adapters Fathom ships: embedded defaults and the scale-out engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from fathom.plugins.adapters import AdapterSpec
from fathom.plugins.hookspecs import hookimpl


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqliteOptions(_Options):
    path: Path | None = None  # default: <data_dir>/fathom.db


class PostgresOptions(_Options):
    url: str  # postgres://…, postgresql://… and Langfuse's DATABASE_URL forms are accepted
    pool_size: int = 10
    connect_timeout: float = 10.0


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


class S3BlobOptions(_Options):
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    force_path_style: bool = False
    prefix: str = ""
    sse: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: str | None = None


class AzureBlobOptions(_Options):
    container: str
    connection_string: SecretStr | None = None
    account_url: str | None = None
    account_name: str | None = None
    account_key: SecretStr | None = None
    prefix: str = ""


class GcsBlobOptions(_Options):
    bucket: str
    project: str | None = None
    endpoint_url: str | None = None
    credentials_file: SecretStr | None = None  # a path or the key's JSON
    prefix: str = ""


class RedisQueueOptions(_Options):
    url: SecretStr
    stream: str = "fathom:jobs"
    group: str = "fathom-workers"
    max_attempts: int = 6
    backoff_base_seconds: float = 5.0
    claim_idle_seconds: float = 60.0


class MemoryCacheOptions(_Options):
    pass


class RedisCacheOptions(_Options):
    url: SecretStr
    channel: str = "fathom:invalidate"
    # True: one prompt cache in Redis for every process; False: each process keeps its own,
    # emptied through the channel.
    shared_prompts: bool = True


def _arguments(options: _Options) -> dict[str, Any]:
    """Every option as the adapter's keyword argument of the same name, secrets revealed:
    the adapters whose options mirror their constructor take them all this way."""
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in options
    }


def _sqlite(options: SqliteOptions, settings: Any) -> Any:
    from fathom.adapters.storage.sql.store import SqlRecordStore

    path = options.path or settings.data_dir / "fathom.db"
    return SqlRecordStore(f"sqlite+aiosqlite:///{Path(path).absolute()}")


def _postgres(options: PostgresOptions, settings: Any) -> Any:
    from fathom.adapters.storage.sql.store import SqlRecordStore

    # The store itself turns postgres://, sslmode= and Prisma's schema= into asyncpg's terms.
    return SqlRecordStore(
        options.url, pool_size=options.pool_size, connect_timeout=options.connect_timeout
    )


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


def _s3_blob(options: S3BlobOptions, settings: Any) -> Any:
    from fathom.adapters.blob.s3 import S3BlobStore

    return S3BlobStore(**_arguments(options))


def _azure_blob(options: AzureBlobOptions, settings: Any) -> Any:
    from fathom.adapters.blob.azure import AzureBlobStore

    return AzureBlobStore(**_arguments(options))


def _gcs_blob(options: GcsBlobOptions, settings: Any) -> Any:
    from fathom.adapters.blob.gcs import GcsBlobStore

    return GcsBlobStore(**_arguments(options))


def _redis_queue(options: RedisQueueOptions, settings: Any) -> Any:
    from fathom.adapters.queue.redis import RedisStreamsQueue

    return RedisStreamsQueue(**_arguments(options))


def _memory_cache(options: MemoryCacheOptions, settings: Any) -> Any:
    from fathom.core.ports.cache import Caching, LocalInvalidationBus
    from fathom.core.ports.system import SystemClock
    from fathom.core.usecases.prompts import InMemoryPromptCache

    # One process: its caches are the only ones, so nothing needs broadcasting.
    prompts = InMemoryPromptCache(SystemClock(), ttl_seconds=settings.prompt_cache_ttl_seconds)
    return Caching(LocalInvalidationBus(), prompts)


def _redis_cache(options: RedisCacheOptions, settings: Any) -> Any:
    from fathom.adapters.queue.redis_cache import RedisInvalidationBus, RedisPromptCache
    from fathom.core.ports.cache import Caching

    url = options.url.get_secret_value()
    prompts = None
    if options.shared_prompts:
        prompts = RedisPromptCache(url, ttl_seconds=settings.prompt_cache_ttl_seconds)
    return Caching(RedisInvalidationBus(url, channel=options.channel), prompts)


@hookimpl
def fathom_adapters() -> list[AdapterSpec]:
    return [
        AdapterSpec("records", "sqlite", SqliteOptions, _sqlite, "SQLite file (embedded default)"),
        AdapterSpec("records", "postgres", PostgresOptions, _postgres, "PostgreSQL"),
        AdapterSpec("telemetry", "chdb", ChdbOptions, _chdb, "embedded ClickHouse (chDB)"),
        AdapterSpec("telemetry", "clickhouse", ClickHouseOptions, _clickhouse, "ClickHouse HTTP"),
        AdapterSpec("blob", "local", LocalBlobOptions, _local_blob, "local files"),
        AdapterSpec("blob", "s3", S3BlobOptions, _s3_blob, "Amazon S3 or S3-compatible"),
        AdapterSpec("blob", "azure", AzureBlobOptions, _azure_blob, "Azure Blob Storage"),
        AdapterSpec("blob", "gcs", GcsBlobOptions, _gcs_blob, "Google Cloud Storage"),
        AdapterSpec("queue", "local", LocalQueueOptions, _local_queue, "durable SQLite queue"),
        AdapterSpec("queue", "redis", RedisQueueOptions, _redis_queue, "Redis Streams"),
        AdapterSpec("cache", "memory", MemoryCacheOptions, _memory_cache, "this process only"),
        AdapterSpec("cache", "redis", RedisCacheOptions, _redis_cache, "Redis: every process"),
    ]
