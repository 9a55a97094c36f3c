"""The `Locks` contract: one holder per key at a time, across processes where the adapter
reaches them (two record stores on one Postgres stand for two processes), released on exit,
on failure and on cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fathom.adapters.storage.sql.locks import PostgresAdvisoryLocks, record_store_locks
from fathom.adapters.storage.sql.store import SqlRecordStore
from fathom.core.ports.locks import Locks, ProcessLocks

WAIT = 0.3  # long enough for a lock that is free to be taken


@pytest.fixture(params=["process", "postgres"])
async def two_processes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Locks, Locks]]:
    """The locks two processes sharing the deployment's engines would each use."""
    if request.param == "process":
        shared = ProcessLocks()  # one process: both sides are the same object
        yield shared, shared
        return
    url = request.getfixturevalue("fresh_postgres_url")
    first, second = SqlRecordStore(url), SqlRecordStore(url)
    try:
        yield record_store_locks(first), record_store_locks(second)
    finally:
        await first.close()
        await second.close()


async def entered(locks: Locks, key: str, inside: asyncio.Event, leave: asyncio.Event) -> None:
    async with locks.hold(key):
        inside.set()
        await leave.wait()


async def test_a_second_holder_waits_for_the_first(two_processes: tuple[Locks, Locks]) -> None:
    first, second = two_processes
    first_inside, first_leave = asyncio.Event(), asyncio.Event()
    second_inside, second_leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(entered(first, "merge:p1", first_inside, first_leave))
    await asyncio.wait_for(first_inside.wait(), 10)
    waiter = asyncio.create_task(entered(second, "merge:p1", second_inside, second_leave))
    await asyncio.sleep(WAIT)
    assert not second_inside.is_set()
    first_leave.set()
    await holder
    await asyncio.wait_for(second_inside.wait(), 10)
    second_leave.set()
    await waiter


async def test_other_keys_do_not_wait(two_processes: tuple[Locks, Locks]) -> None:
    first, second = two_processes
    inside, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(entered(first, "merge:p1", inside, leave))
    await asyncio.wait_for(inside.wait(), 10)
    async with asyncio.timeout(10):
        async with second.hold("merge:p2"):
            pass
    leave.set()
    await holder


async def test_failure_and_cancellation_release_the_lock(
    two_processes: tuple[Locks, Locks],
) -> None:
    first, second = two_processes
    with pytest.raises(RuntimeError):
        async with first.hold("merge:p1"):
            raise RuntimeError("the batch failed")
    inside, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(entered(first, "merge:p1", inside, leave))
    await asyncio.wait_for(inside.wait(), 10)
    holder.cancel()  # a worker stopping mid-batch
    with pytest.raises(asyncio.CancelledError):
        await holder
    async with asyncio.timeout(10):
        async with second.hold("merge:p1"):
            pass


def test_postgres_records_hold_locks_in_postgres(tmp_path: Path, fresh_postgres_url: str) -> None:
    assert isinstance(record_store_locks(SqlRecordStore(fresh_postgres_url)), PostgresAdvisoryLocks)
    sqlite = SqlRecordStore(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    assert isinstance(record_store_locks(sqlite), ProcessLocks)
