"""A scaled-out process that cannot reach a dependency stops at start-up with one line naming
the setting; a running one reports the dependency that went down on `/api/public/ready`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer

CLOSED_PORT = 15999  # nothing listens here


def start_web(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fathom", "web", "--port", "13071", "--data-dir", str(tmp_path)],
        env={**os.environ, "TZ": "UTC", "FATHOM_SALT": "s", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], setting: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("fathom: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert setting in errors[0]


def test_unreachable_database_names_the_setting(tmp_path: Path) -> None:
    result = start_web(
        {
            "FATHOM_RECORDS__KIND": "postgres",
            "FATHOM_RECORDS__URL": f"postgresql://fathom:secret@127.0.0.1:{CLOSED_PORT}/fathom",
        },
        tmp_path,
    )
    assert_one_clear_line(result, "FATHOM_RECORDS__URL")
    assert "secret" not in result.stderr


def test_wrong_bucket_names_the_setting(tmp_path: Path, s3_endpoint: str) -> None:
    result = start_web(
        {
            "FATHOM_BLOB__KIND": "s3",
            "FATHOM_BLOB__BUCKET": "no-such-bucket",
            "FATHOM_BLOB__ENDPOINT_URL": s3_endpoint,
            "FATHOM_BLOB__FORCE_PATH_STYLE": "true",
            "FATHOM_BLOB__ACCESS_KEY_ID": "test",
            "FATHOM_BLOB__SECRET_ACCESS_KEY": "test",
            "FATHOM_BLOB__REGION": "us-east-1",
        },
        tmp_path,
    )
    assert_one_clear_line(result, "FATHOM_BLOB__BUCKET")


def test_ready_reports_the_dependency_that_is_down(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    import boto3

    server = LiveServer(
        port=13072,
        data_dir=tmp_path / "data",
        env_overrides={
            "FATHOM_BLOB__KIND": "s3",
            "FATHOM_BLOB__BUCKET": s3_bucket,
            "FATHOM_BLOB__ENDPOINT_URL": s3_endpoint,
            "FATHOM_BLOB__FORCE_PATH_STYLE": "true",
            "FATHOM_BLOB__ACCESS_KEY_ID": "test",
            "FATHOM_BLOB__SECRET_ACCESS_KEY": "test",
            "FATHOM_BLOB__REGION": "us-east-1",
        },
    )
    server.start()
    try:
        ready = httpx.get(f"{server.url}/api/public/ready", timeout=30)
        assert ready.status_code == 200, ready.text
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        for item in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", []):
            s3.delete_object(Bucket=s3_bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=s3_bucket)
        deadline = time.monotonic() + 20
        while True:
            ready = httpx.get(f"{server.url}/api/public/ready", timeout=30)
            if ready.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert ready.status_code == 503
        assert ready.json()["down"] == ["blob"]
    finally:
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 - the bucket is gone, whatever the client says
            s3.head_bucket(Bucket=s3_bucket)
