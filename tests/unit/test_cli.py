"""The command line gives one clear line for bad input, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def fathom(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "fathom", *args],
        env={**os.environ, "TZ": "UTC", **(env or {})},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env, expected",
    [
        (
            {"FATHOM_TELEMETRY__KIND": "mongo"},
            "FATHOM_TELEMETRY__KIND='mongo' is not a known telemetry adapter",
        ),
        ({"FATHOM_BLOB__PAHT": "/x"}, "unknown option 'paht' (FATHOM_BLOB__PAHT)"),
        ({"FATHOM_PORT": "eighty"}, "invalid settings: port"),
    ],
)
def test_misconfiguration_is_one_clear_line(tmp_path: Path, env: dict, expected: str) -> None:
    result = fathom("plugins", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("fathom: error: ")
    assert expected in result.stderr


def test_unusable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = fathom("migrate", "--data-dir", str(blocker))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"FATHOM_DATA_DIR={blocker}" in result.stderr


def test_plugins_lists_builtins_and_adapters(tmp_path: Path) -> None:
    result = fathom("plugins", "--json", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["name"] == "fathom.core_adapters"


def test_create_project_then_api_key(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    created = fathom(
        "create-project", "Demo", "--project-id", "demo", "--org-id", "acme", "--data-dir", data
    )
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    assert keys["projectId"] == "demo" and keys["organizationId"] == "acme"
    assert keys["publicKey"].startswith("pk-lf-") and keys["secretKey"].startswith("sk-lf-")
    again = fathom(
        "create-project", "Demo", "--project-id", "demo", "--org-id", "acme", "--data-dir", data
    )
    assert again.returncode == 2 and "Project demo already exists" in again.stderr
    key = fathom("create-api-key", "demo", "--data-dir", data)
    assert key.returncode == 0 and json.loads(key.stdout)["publicKey"] != keys["publicKey"]
    missing = fathom("create-api-key", "nope", "--data-dir", data)
    assert missing.returncode == 2 and "Project nope not found" in missing.stderr


def test_dead_letters_are_listed_and_requeued(tmp_path: Path) -> None:
    from fathom.adapters.queue.local import LocalDurableQueue

    data = tmp_path / "d"
    data.mkdir()

    async def fail_one_job() -> None:
        queue = LocalDurableQueue(data / "queue.sqlite3", max_attempts=1)
        await queue.enqueue("ingestion", {"key": "events/p/batch.json"})

        async def reject(jobs: list) -> None:
            raise ValueError("a plugin rejected it")

        consuming = asyncio.create_task(queue.consume(reject))
        while await queue.pending():
            await asyncio.sleep(0.01)
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        await queue.close()

    asyncio.run(fail_one_job())
    listed = fathom("dead-letters", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert "ingestion" in line and "events/p/batch.json" in line
    assert "attempts=1" in line and "ValueError: a plugin rejected it" in line
    requeued = fathom("dead-letters", "--requeue", "--data-dir", str(data))
    assert requeued.returncode == 0 and requeued.stdout.strip() == "1 job(s) requeued"
    assert fathom("dead-letters", "--data-dir", str(data)).stdout == ""
