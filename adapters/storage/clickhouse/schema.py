"""ClickHouse schema for telemetry: numbered, idempotent migration steps.

The tables follow Langfuse's v3 layout (`traces`, `observations`, `scores`):
`ReplacingMergeTree(event_ts, is_deleted)` so a newer row with the same sort key replaces an
older one and a row with `is_deleted = 1` hides it, `project_id` first in every sort key,
bloom-filter skip indexes on the ids that are looked up without the sort key.

Deliberate differences from upstream:
- Sort keys hold only columns that never change for an id (project, day of the
  timestamp/start time, id). Upstream also keys observations by `type` and scores by `name`;
  an update that changed those would leave the old row visible under `FINAL`, because
  ReplacingMergeTree only collapses rows with equal sort keys. Set/bloom indexes on `type` and
  `name` keep those filters cheap instead.
- Every timestamp is `DateTime64(6, 'UTC')`: the same 8 bytes as millisecond precision, but
  Python datetimes and OTLP microseconds round-trip exactly and two upserts within the same
  millisecond still get distinct versions.
- `metadata` values are JSON text (`'"text"'`, `'1'`, `'{"a":1}'`), so any value round-trips;
  `input`/`output` are JSON text too. Inserts usually send the whole metadata object to the
  EPHEMERAL column `metadata_json`, which the default of `metadata` splits (migration 4).

The SQL below is written once with `{db}`, `{on_cluster}` and `{engine:...}` placeholders;
`render()` turns it into plain single-node DDL or, with a cluster name, into `ON CLUSTER` DDL
on `Replicated*` engines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fathom.core.domain.errors import ConfigurationError

# Identifiers are spliced into DDL, so they must be plain names.
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER_RE.match(value):
        raise ConfigurationError(
            f"ClickHouse {what} {value!r} must match [A-Za-z_][A-Za-z0-9_]* (at most 64 chars)"
        )
    return value


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_RMT = "{engine:ReplacingMergeTree(event_ts, is_deleted)}"
# Inserts may send metadata as one JSON object into the EPHEMERAL `metadata_json` (not
# stored); the default of `metadata` splits it into key -> JSON text of the value.
_METADATA_TYPE = "Map(LowCardinality(String), String)"
_METADATA_FROM_JSON = f"CAST(JSONExtractKeysAndValuesRaw(metadata_json), '{_METADATA_TYPE}')"
# Parts stay compact (all columns in one file) up to 4 GiB of uncompressed data instead of
# 10 MiB: a wide part is some 180 files, whose creation made up much of an insert's CPU, and a
# point read of a compact part costs less (measured at 1M observations: inserts about a third
# cheaper, trace reads about a fifth, list and metrics scans unchanged).
_MIN_BYTES_FOR_WIDE_PART = 4 * 1024**3
# Large text columns (input/output) move from ZSTD(3) to ZSTD(1) in migration 5: on natural
# text level 1 compresses about twice as fast (every insert and every merge pays it) for some
# 15% larger output; decompression speed is the same.

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create_traces",
        (
            f"""
CREATE TABLE IF NOT EXISTS {{db}}.traces {{on_cluster}} (
    id String,
    project_id String,
    timestamp DateTime64(6, 'UTC'),
    name Nullable(String),
    user_id Nullable(String),
    session_id Nullable(String),
    release Nullable(String),
    version Nullable(String),
    input Nullable(String) CODEC(ZSTD(3)),
    output Nullable(String) CODEC(ZSTD(3)),
    metadata Map(LowCardinality(String), String),
    tags Array(String),
    public Bool DEFAULT false,
    bookmarked Bool DEFAULT false,
    environment LowCardinality(String) DEFAULT 'default',
    created_at DateTime64(6, 'UTC') DEFAULT now64(6),
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6),
    event_ts DateTime64(6, 'UTC'),
    is_deleted UInt8 DEFAULT 0,
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_name name TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {_RMT}
PARTITION BY toYYYYMM(timestamp)
PRIMARY KEY (project_id, toDate(timestamp))
ORDER BY (project_id, toDate(timestamp), id)
""",
        ),
    ),
    Migration(
        2,
        "create_observations",
        (
            f"""
CREATE TABLE IF NOT EXISTS {{db}}.observations {{on_cluster}} (
    id String,
    trace_id String,
    project_id String,
    type LowCardinality(String),
    parent_observation_id Nullable(String),
    start_time DateTime64(6, 'UTC'),
    end_time Nullable(DateTime64(6, 'UTC')),
    completion_start_time Nullable(DateTime64(6, 'UTC')),
    name Nullable(String),
    metadata Map(LowCardinality(String), String),
    level LowCardinality(String) DEFAULT 'DEFAULT',
    status_message Nullable(String),
    version Nullable(String),
    input Nullable(String) CODEC(ZSTD(3)),
    output Nullable(String) CODEC(ZSTD(3)),
    environment LowCardinality(String) DEFAULT 'default',
    provided_model_name Nullable(String),
    internal_model_id Nullable(String),
    model_parameters Nullable(String),
    provided_usage_details Map(LowCardinality(String), UInt64),
    usage_details Map(LowCardinality(String), UInt64),
    provided_cost_details Map(LowCardinality(String), Decimal64(12)),
    cost_details Map(LowCardinality(String), Decimal64(12)),
    total_cost Nullable(Decimal64(12)),
    usage_pricing_tier_name Nullable(String),
    prompt_id Nullable(String),
    prompt_name Nullable(String),
    prompt_version Nullable(UInt16),
    created_at DateTime64(6, 'UTC') DEFAULT now64(6),
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6),
    event_ts DateTime64(6, 'UTC'),
    is_deleted UInt8 DEFAULT 0,
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_type type TYPE set(16) GRANULARITY 1,
    INDEX idx_name name TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {_RMT}
PARTITION BY toYYYYMM(start_time)
PRIMARY KEY (project_id, toDate(start_time))
ORDER BY (project_id, toDate(start_time), id)
""",
        ),
    ),
    Migration(
        3,
        "create_scores",
        (
            f"""
CREATE TABLE IF NOT EXISTS {{db}}.scores {{on_cluster}} (
    id String,
    project_id String,
    timestamp DateTime64(6, 'UTC'),
    name String,
    data_type LowCardinality(String),
    value Nullable(Float64),
    string_value Nullable(String) CODEC(ZSTD(3)),
    source LowCardinality(String),
    trace_id Nullable(String),
    observation_id Nullable(String),
    session_id Nullable(String),
    dataset_run_id Nullable(String),
    comment Nullable(String) CODEC(ZSTD(3)),
    metadata Map(LowCardinality(String), String),
    config_id Nullable(String),
    queue_id Nullable(String),
    author_user_id Nullable(String),
    execution_trace_id Nullable(String),
    environment LowCardinality(String) DEFAULT 'default',
    created_at DateTime64(6, 'UTC') DEFAULT now64(6),
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6),
    event_ts DateTime64(6, 'UTC'),
    is_deleted UInt8 DEFAULT 0,
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_observation_id observation_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_dataset_run_id dataset_run_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_name name TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {_RMT}
PARTITION BY toYYYYMM(timestamp)
PRIMARY KEY (project_id, toDate(timestamp))
ORDER BY (project_id, toDate(timestamp), id)
""",
        ),
    ),
    Migration(
        4,
        "metadata_json_input",
        tuple(
            statement
            for table in ("traces", "observations", "scores")
            for statement in (
                f"ALTER TABLE {{db}}.{table} {{on_cluster}} "
                "ADD COLUMN IF NOT EXISTS metadata_json String EPHEMERAL",
                f"ALTER TABLE {{db}}.{table} {{on_cluster}} "
                f"MODIFY COLUMN metadata {_METADATA_TYPE} DEFAULT {_METADATA_FROM_JSON}",
            )
        ),
    ),
    Migration(
        5,
        "compact_parts_zstd1",
        tuple(
            f"ALTER TABLE {{db}}.{table} {{on_cluster}} "
            f"MODIFY SETTING min_bytes_for_wide_part = {_MIN_BYTES_FOR_WIDE_PART}"
            for table in ("traces", "observations", "scores")
        )
        + tuple(
            f"ALTER TABLE {{db}}.{table} {{on_cluster}} "
            f"MODIFY COLUMN {column} Nullable(String) CODEC(ZSTD(1))"
            for table, column in (
                ("traces", "input"),
                ("traces", "output"),
                ("observations", "input"),
                ("observations", "output"),
                ("scores", "string_value"),
                ("scores", "comment"),
            )
        ),
    ),
)

# Keyed by version and replaced on re-insert, so two processes migrating at once
# leave one row per step.
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster} (
    version UInt32,
    name String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = {engine:ReplacingMergeTree(applied_at)}
ORDER BY version
"""

_ENGINE_RE = re.compile(r"\{engine:(\w+)\(([^)]*)\)\}")


def render(sql: str, database: str, cluster: str | None = None) -> str:
    """Fill the placeholders of one statement for a single node or for a cluster."""
    check_identifier(database, "database")
    if cluster is not None:
        check_identifier(cluster, "cluster")
        on_cluster = f"ON CLUSTER {cluster}"

        # Replicated engines take the replication path from the server's
        # default_replica_path/default_replica_name macros, as upstream's clustered set does.
        def engine(match: re.Match[str]) -> str:
            return f"Replicated{match.group(1)}({match.group(2)})"
    else:
        on_cluster = ""

        def engine(match: re.Match[str]) -> str:
            return f"{match.group(1)}({match.group(2)})"

    sql = _ENGINE_RE.sub(engine, sql)
    return sql.replace("{db}", database).replace("{on_cluster}", on_cluster).strip()


def create_database_sql(database: str, cluster: str | None = None) -> str:
    return render("CREATE DATABASE IF NOT EXISTS {db} {on_cluster}", database, cluster)


def migrations_table_sql(database: str, cluster: str | None = None) -> str:
    return render(_MIGRATIONS_TABLE, database, cluster)


def pending(applied: set[int]) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version not in applied]


def _check_versions() -> None:
    versions = [m.version for m in MIGRATIONS]
    if versions != sorted(set(versions)):
        raise RuntimeError("ClickHouse migrations must have unique, increasing versions")


_check_versions()
