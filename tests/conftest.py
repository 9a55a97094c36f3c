"""Shared fixtures: settings on a temporary data dir, a started runtime, an HTTP client."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# chDB reads naive datetimes in the process time zone.
os.environ["TZ"] = "UTC"
time.tzset()

from fathom.entrypoints.bootstrap import Runtime  # noqa: E402
from fathom.entrypoints.settings import HeadlessInit, Settings  # noqa: E402

# Session fixtures of the real components (Postgres, Redis, object stores, ClickHouse HTTP).
pytest_plugins = [
    "tests.services.postgres",
    "tests.services.redis",
    "tests.services.object_stores",
    "tests.services.clickhouse_http",
]

PUBLIC_KEY = "pk-lf-test-public"
SECRET_KEY = "sk-lf-test-secret"
PROJECT_ID = "project-test"
ORG_ID = "org-test"


def basic_auth(public_key: str = PUBLIC_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
    token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    init = HeadlessInit(
        org_id=ORG_ID,
        org_name="Test Org",
        project_id=PROJECT_ID,
        project_name="Test Project",
        project_public_key=PUBLIC_KEY,
        project_secret_key=SECRET_KEY,
    )
    return Settings(data_dir=data_dir, salt="test-salt", init=init, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def records_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime with the record store migrated and provisioned (no telemetry engine)."""
    runtime = Runtime(settings)
    await runtime.start(telemetry=False)
    yield runtime
    await runtime.stop()
