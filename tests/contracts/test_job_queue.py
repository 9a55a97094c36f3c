"""Contract of `JobQueue`, run against every adapter: the local SQLite queue and Redis Streams.

To add an adapter, add a `Backend` to `BACKENDS`: `open` builds a queue on a named location
that outlives the queue object (a file, a stream key) so reopening sees the same jobs, and
`child_spec` tells the crash-test child process (`CHILD` below) how to build the same queue.
Adapters must also offer `dead_letters()`; queues here are opened with tiny backoffs so
retries take milliseconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fathom.adapters.queue.local import LocalDurableQueue
from fathom.core.domain.errors import ConfigurationError, InvalidInput, Unavailable
from fathom.core.ports.queue import Job, JobQueue, JobsFailed

TIMEOUT = 10.0


@dataclass
class Backend:
    open: Callable[[str, dict[str, Any]], JobQueue]
    child_spec: Callable[[str], dict[str, Any]]


def _local_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(
        open=lambda name, options: LocalDurableQueue(tmp_path / f"{name}.sqlite3", **options),
        child_spec=lambda name: {"adapter": "local", "path": str(tmp_path / f"{name}.sqlite3")},
    )


# A consumer that stops refreshing its jobs loses them after this long (production: 60 s), so
# the redelivery tests run in seconds.
REDIS_CLAIM_IDLE_SECONDS = 1.0


def _redis_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    url = request.getfixturevalue("redis_url")  # skips (or fails under CI) without Redis
    from fathom.adapters.queue.redis import RedisStreamsQueue

    def open_queue(name: str, options: dict[str, Any]) -> JobQueue:
        options = {"claim_idle_seconds": REDIS_CLAIM_IDLE_SECONDS, **options}
        if "poll_interval" in options:  # the local queue's idle wait is Redis' BLOCK time
            options["block_ms"] = int(options.pop("poll_interval") * 1000)
        return RedisStreamsQueue(url, stream=f"fathom:test:{name}", **options)

    return Backend(
        open=open_queue,
        child_spec=lambda name: {
            "adapter": "redis",
            "url": url,
            "stream": f"fathom:test:{name}",
            "claim_idle_seconds": REDIS_CLAIM_IDLE_SECONDS,
        },
    )


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "local": _local_backend,
    "redis": _redis_backend,
}


class QueueFactory:
    """Opens queues for one test and closes them all afterwards."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._opened: list[JobQueue] = []

    def __call__(self, name: str = "jobs", **options: Any) -> JobQueue:
        queue = self.backend.open(name, options)
        self._opened.append(queue)
        return queue

    async def close_all(self) -> None:
        for queue in self._opened:
            await queue.close()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
async def make_queue(backend: Backend) -> AsyncIterator[QueueFactory]:
    factory = QueueFactory(backend)
    yield factory
    await factory.close_all()


class Recorder:
    """A handler that records what it was given; optionally fails on purpose."""

    def __init__(self, fail: Callable[[Job], bool] | None = None) -> None:
        self.batches: list[list[Job]] = []
        self.deliveries: list[tuple[float, Job]] = []
        self._fail = fail
        self._changed = asyncio.Event()

    async def __call__(self, jobs: list[Job]) -> None:
        now = time.monotonic()
        self.batches.append(list(jobs))
        self.deliveries.extend((now, job) for job in jobs)
        self._changed.set()
        if self._fail is not None and any(self._fail(job) for job in jobs):
            raise RuntimeError("handler failed on purpose")

    @property
    def payloads(self) -> list[Any]:
        return [job.payload["i"] for _, job in self.deliveries]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


class Consuming:
    """Runs `queue.consume` in a task for the duration of an `async with`."""

    def __init__(
        self,
        queue: JobQueue,
        handler: Callable[[list[Job]], Awaitable[None]],
        *,
        batch_size: int = 100,
    ) -> None:
        self._task = asyncio.create_task(queue.consume(handler, batch_size=batch_size))

    async def __aenter__(self) -> Consuming:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


async def test_jobs_are_delivered_in_fifo_order(make_queue: QueueFactory) -> None:
    queue = make_queue()
    for i in range(50):
        await queue.enqueue("t", {"i": i})
    recorder = Recorder()
    async with Consuming(queue, recorder, batch_size=7):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 50)
    assert recorder.payloads == list(range(50))
    assert all(job.kind == "t" and job.attempts == 0 for _, job in recorder.deliveries)


async def test_due_jobs_are_delivered_in_full_batches(make_queue: QueueFactory) -> None:
    queue = make_queue()
    await asyncio.gather(*(queue.enqueue("t", {"i": i}) for i in range(100)))
    recorder = Recorder()
    async with Consuming(queue, recorder, batch_size=25):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 100)
    assert [len(batch) for batch in recorder.batches] == [25, 25, 25, 25]


async def test_payload_and_id_round_trip(make_queue: QueueFactory) -> None:
    queue = make_queue()
    payload = {"i": 0, "key": "events/p/x.json", "nested": {"a": [1, 2.5, None, "ü"]}}
    job_id = await queue.enqueue("ingestion", payload)
    recorder = Recorder()
    async with Consuming(queue, recorder):
        await recorder.wait_until(lambda: bool(recorder.deliveries))
    (_, job), *_ = recorder.deliveries
    assert (job.id, job.kind, job.payload) == (job_id, "ingestion", payload)


async def test_ack_removes_jobs(make_queue: QueueFactory) -> None:
    queue = make_queue()
    for i in range(5):
        await queue.enqueue("t", {"i": i})
    recorder = Recorder()
    async with Consuming(queue, recorder):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 5)
        await eventually(lambda: _pending_is(queue, 0))
    await asyncio.sleep(0.1)
    again = Recorder()
    async with Consuming(queue, again):
        await asyncio.sleep(0.2)
    assert again.deliveries == []


async def test_pending_counts_due_delayed_and_in_flight_jobs(make_queue: QueueFactory) -> None:
    queue = make_queue()
    assert await queue.pending() == 0
    await queue.enqueue("t", {"i": 0})
    await queue.enqueue("t", {"i": 1})
    await queue.enqueue("t", {"i": 2}, delay_seconds=60)
    assert await queue.pending() == 3

    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(jobs: list[Job]) -> None:
        started.set()
        await release.wait()

    async with Consuming(queue, slow):
        await asyncio.wait_for(started.wait(), TIMEOUT)
        assert await queue.pending() == 3  # leased, not yet acknowledged
        release.set()
        await eventually(lambda: _pending_is(queue, 1))


async def test_delay_is_honoured(make_queue: QueueFactory) -> None:
    queue = make_queue()
    recorder = Recorder()
    async with Consuming(queue, recorder):
        start = time.monotonic()
        await queue.enqueue("t", {"i": "late"}, delay_seconds=0.4)
        await queue.enqueue("t", {"i": "now"})
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 2)
    times = {job.payload["i"]: at - start for at, job in recorder.deliveries}
    assert times["now"] < 0.3
    assert 0.38 <= times["late"] < 1.5


async def test_enqueue_wakes_an_idle_consumer_quickly(make_queue: QueueFactory) -> None:
    # A long poll interval proves the wake-up comes from the enqueue, not from polling.
    queue = make_queue(poll_interval=5.0)
    recorder = Recorder()
    latencies: list[float] = []
    async with Consuming(queue, recorder):
        await asyncio.sleep(0.1)
        for i in range(20):
            start = time.monotonic()
            await queue.enqueue("t", {"i": i})
            await recorder.wait_until(lambda n=i + 1: len(recorder.deliveries) >= n)
            latencies.append(recorder.deliveries[-1][0] - start)
            await asyncio.sleep(0.01)
    assert statistics.median(latencies) < 0.05, latencies
    assert max(latencies) < 0.5, latencies


async def test_failed_jobs_back_off_then_dead_letter(make_queue: QueueFactory) -> None:
    queue = make_queue(max_attempts=3, backoff_base_seconds=0.1)
    await queue.enqueue("t", {"i": "poison"})
    recorder = Recorder(fail=lambda job: True)
    async with Consuming(queue, recorder):
        await eventually(lambda: _has_dead_letters(queue))
    attempts = [job.attempts for _, job in recorder.deliveries]
    assert attempts == [0, 1, 2]
    times = [at for at, _ in recorder.deliveries]
    assert times[1] - times[0] >= 0.1 * 0.9  # base × 2^0
    assert times[2] - times[1] >= 0.2 * 0.9  # base × 2^1
    (dead,) = await queue.dead_letters()
    assert dead.payload == {"i": "poison"}
    assert dead.attempts == 3
    assert "failed on purpose" in dead.meta["last_error"]
    assert await queue.pending() == 0


async def test_dead_letters_can_be_requeued(make_queue: QueueFactory) -> None:
    queue = make_queue(max_attempts=1, backoff_base_seconds=0.01)
    for i in range(2):
        await queue.enqueue("t", {"i": i})
    failing = Recorder(fail=lambda job: True)
    async with Consuming(queue, failing):
        await eventually(lambda: _pending_is(queue, 0))
    assert sorted(job.payload["i"] for job in await queue.dead_letters()) == [0, 1]
    # After the fix: back in the queue, due now, with a fresh count of attempts.
    assert await queue.requeue_dead_letters() == 2
    assert await queue.dead_letters() == [] and await queue.pending() == 2
    fixed = Recorder()
    async with Consuming(queue, fixed):
        await fixed.wait_until(lambda: len(fixed.deliveries) == 2)
        await eventually(lambda: _pending_is(queue, 0))
    assert sorted(fixed.payloads) == [0, 1]
    assert {job.attempts for _, job in fixed.deliveries} == {0}
    assert await queue.requeue_dead_letters() == 0


async def test_a_job_that_fails_once_is_retried_and_then_acked(make_queue: QueueFactory) -> None:
    queue = make_queue(max_attempts=3, backoff_base_seconds=0.01)
    await queue.enqueue("t", {"i": 1})
    recorder = Recorder(fail=lambda job: job.attempts == 0)
    async with Consuming(queue, recorder):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 2)
        await eventually(lambda: _pending_is(queue, 0))
    assert [job.attempts for _, job in recorder.deliveries] == [0, 1]
    assert await queue.dead_letters() == []


async def test_a_failing_batch_is_retried_as_a_whole(make_queue: QueueFactory) -> None:
    queue = make_queue(max_attempts=2, backoff_base_seconds=0.01)
    for i in range(3):
        await queue.enqueue("t", {"i": i})
    recorder = Recorder(fail=lambda job: job.payload["i"] == 1 and job.attempts == 0)
    async with Consuming(queue, recorder, batch_size=10):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 6)
        await eventually(lambda: _pending_is(queue, 0))
    assert collections.Counter(recorder.payloads) == {0: 2, 1: 2, 2: 2}


async def test_a_partly_failed_batch_retries_only_its_failed_jobs(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue(max_attempts=2, backoff_base_seconds=0.01)
    for i in range(4):
        await queue.enqueue("t", {"i": i})
    batches: list[list[int]] = []

    async def handler(jobs: list[Job]) -> None:
        batches.append([job.payload["i"] for job in jobs])
        poison = [job for job in jobs if job.payload["i"] in (1, 2)]
        if poison:
            raise JobsFailed(poison, ValueError("poison batch"))

    async with Consuming(queue, handler, batch_size=10):
        await eventually(lambda: _pending_is(queue, 0))
    # The healthy jobs were acknowledged at once; the failed ones came back alone, failed
    # again and were dead-lettered with the cause as their error.
    assert batches[0] == [0, 1, 2, 3]
    assert sorted(i for batch in batches[1:] for i in batch) == [1, 2]
    dead = await queue.dead_letters()
    assert sorted(job.payload["i"] for job in dead) == [1, 2]
    assert {job.attempts for job in dead} == {2}
    assert all("ValueError: poison batch" in job.meta["last_error"] for job in dead)


async def test_concurrent_enqueues_are_each_delivered_exactly_once(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    ids = await asyncio.gather(*(queue.enqueue("t", {"i": i}) for i in range(200)))
    assert len(set(ids)) == 200
    recorder = Recorder()
    # Two consumers on one queue must not lease the same job twice.
    async with Consuming(queue, recorder, batch_size=16), Consuming(queue, recorder, batch_size=9):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 200)
        await eventually(lambda: _pending_is(queue, 0))
        await asyncio.sleep(0.1)
    assert collections.Counter(recorder.payloads) == collections.Counter(range(200))


async def test_enqueues_racing_a_consumer_are_all_delivered(make_queue: QueueFactory) -> None:
    queue = make_queue()
    recorder = Recorder()
    async with Consuming(queue, recorder, batch_size=32):
        await asyncio.gather(*(queue.enqueue("t", {"i": i}) for i in range(300)))
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 300)
    assert sorted(recorder.payloads) == list(range(300))


async def test_a_cancelled_consumer_hands_its_jobs_back(make_queue: QueueFactory) -> None:
    queue = make_queue()
    await queue.enqueue("t", {"i": 1})
    started = asyncio.Event()

    async def stuck(jobs: list[Job]) -> None:
        started.set()
        await asyncio.Event().wait()

    async with Consuming(queue, stuck):
        await asyncio.wait_for(started.wait(), TIMEOUT)
    recorder = Recorder()
    async with Consuming(queue, recorder):
        await recorder.wait_until(lambda: bool(recorder.deliveries), timeout=2.0)
    assert recorder.payloads == [1]


async def test_jobs_survive_close_and_reopen(make_queue: QueueFactory) -> None:
    queue = make_queue("persist")
    for i in range(10):
        await queue.enqueue("t", {"i": i})
    await queue.enqueue("t", {"i": 10}, delay_seconds=0.2)
    await queue.close()
    reopened = make_queue("persist")
    assert await reopened.pending() == 11
    recorder = Recorder()
    async with Consuming(reopened, recorder):
        await recorder.wait_until(lambda: len(recorder.deliveries) >= 11)
    assert recorder.payloads == list(range(11))


async def test_invalid_jobs_are_rejected(make_queue: QueueFactory) -> None:
    queue = make_queue()
    with pytest.raises(InvalidInput):
        await queue.enqueue("t", {"i": object()})
    with pytest.raises(InvalidInput):
        await queue.enqueue("t", {"i": 1}, delay_seconds=-1)
    assert await queue.pending() == 0


async def test_a_closed_queue_refuses_work(make_queue: QueueFactory) -> None:
    queue = make_queue()
    await queue.ping()
    recorder = Recorder()
    consumer = asyncio.create_task(queue.consume(recorder))
    await asyncio.sleep(0.05)
    await queue.close()
    await asyncio.wait_for(consumer, TIMEOUT)  # an idle consumer returns when closed
    with pytest.raises(Unavailable):
        await queue.enqueue("t", {"i": 1})
    await queue.close()  # idempotent


# -- durability across SIGKILL -------------------------------------------------------------------

# Runs in a separate interpreter so it can be SIGKILLed at an arbitrary moment. Modes:
#   produce N  — 16 concurrent producers enqueue jobs 0..N-1, printing "acked i" after each await.
#   consume B  — the first batch is handled ("handled ..."), the second is leased ("leased ...")
#                and the handler then hangs until the process is killed.
CHILD = r"""
import asyncio, json, sys
from pathlib import Path


def open_queue(spec):
    if spec["adapter"] == "local":
        from fathom.adapters.queue.local import LocalDurableQueue

        return LocalDurableQueue(Path(spec["path"]))
    if spec["adapter"] == "redis":
        from fathom.adapters.queue.redis import RedisStreamsQueue

        return RedisStreamsQueue(
            spec["url"], stream=spec["stream"], claim_idle_seconds=spec["claim_idle_seconds"]
        )
    raise SystemExit(f"unknown adapter {spec['adapter']!r}")


async def produce(queue, n):
    numbers = iter(range(n))

    async def producer():
        for i in numbers:
            await queue.enqueue("crash", {"i": i})
            print(f"acked {i}", flush=True)

    await asyncio.gather(*(producer() for _ in range(16)))
    print("done", flush=True)
    await asyncio.Event().wait()


async def consume(queue, batch_size):
    batches = 0

    async def handler(jobs):
        nonlocal batches
        batches += 1
        numbers = ",".join(str(job.payload["i"]) for job in jobs)
        if batches == 1:
            print(f"handled {numbers}", flush=True)
            return
        print(f"leased {numbers}", flush=True)
        await asyncio.Event().wait()

    await queue.consume(handler, batch_size=batch_size)


async def main():
    spec, mode, number = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    queue = open_queue(spec)
    await queue.ping()
    await (produce if mode == "produce" else consume)(queue, number)


asyncio.run(main())
"""


async def _run_child_until(
    tmp_path: Path, spec: dict[str, Any], mode: str, number: int, stop: Callable[[str], bool]
) -> list[str]:
    """Start the child, SIGKILL it as soon as `stop(line)` holds; return every line it wrote."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        json.dumps(spec),
        mode,
        str(number),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while True:
                raw = await process.stdout.readline()
                if not raw:
                    error = (await process.stderr.read()).decode()
                    pytest.fail(f"child exited before the kill point:\n{error}")
                lines.append(raw.decode().strip())
                if stop(lines[-1]):
                    break
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
    # Whatever the child wrote before dying is still in the pipe.
    lines.extend(line.strip() for line in (await process.stdout.read()).decode().splitlines())
    await process.wait()
    assert process.returncode == -signal.SIGKILL
    return lines


async def _drain(queue: JobQueue) -> list[int]:
    recorder = Recorder()
    async with Consuming(queue, recorder):
        await eventually(lambda: _pending_is(queue, 0))
    return recorder.payloads


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 150, 1500])
async def test_acknowledged_enqueues_survive_sigkill(
    make_queue: QueueFactory, backend: Backend, tmp_path: Path, kill_after: int
) -> None:
    acks = 0

    def enough(line: str) -> bool:
        nonlocal acks
        acks += line.startswith("acked ")
        return acks >= kill_after

    lines = await _run_child_until(tmp_path, backend.child_spec("crash"), "produce", 5000, enough)
    acked = {int(line.split()[1]) for line in lines if line.startswith("acked ")}
    assert "done" not in lines, "the child finished before it was killed; raise N"
    assert len(acked) >= kill_after

    delivered = await _drain(make_queue("crash"))
    assert acked <= set(delivered), f"lost acknowledged jobs: {sorted(acked - set(delivered))}"
    assert len(delivered) == len(set(delivered))


@pytest.mark.slow
async def test_jobs_leased_by_a_killed_consumer_are_redelivered(
    make_queue: QueueFactory, backend: Backend, tmp_path: Path
) -> None:
    queue = make_queue("leases")
    for i in range(50):
        await queue.enqueue("t", {"i": i})
    await queue.close()

    lines = await _run_child_until(
        tmp_path,
        backend.child_spec("leases"),
        "consume",
        10,
        lambda line: line.startswith("leased "),
    )
    handled = {int(i) for line in lines if line.startswith("handled ") for i in line[8:].split(",")}
    leased = {int(i) for line in lines if line.startswith("leased ") for i in line[7:].split(",")}
    assert len(handled) == 10 and len(leased) == 10

    # The local queue's default lease lasts minutes, so prompt redelivery shows its leases die
    # with the process; Redis hands the dead consumer's jobs over after the claim timeout.
    reopened = make_queue("leases")
    delivered = set(await _drain(reopened))
    assert leased <= delivered
    assert delivered == set(range(50)) - handled  # the first batch's ack was durable


# -- local adapter --------------------------------------------------------------------------------


async def test_local_queue_has_a_single_owner(tmp_path: Path) -> None:
    first = LocalDurableQueue(tmp_path / "q.sqlite3")
    await first.ping()  # the queue opens in the background; be sure `first` owns the file
    second = LocalDurableQueue(tmp_path / "q.sqlite3")
    try:
        with pytest.raises(ConfigurationError, match="already open"):
            await second.ping()
    finally:
        await first.close()
        await second.close()
    third = LocalDurableQueue(tmp_path / "q.sqlite3")  # the lock went with close()
    await third.ping()
    await third.close()


async def test_local_queue_reports_an_unusable_path(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    queue = LocalDurableQueue(tmp_path / "taken")
    with pytest.raises(ConfigurationError, match="taken"):
        await queue.ping()
    await queue.close()


def test_local_queue_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        LocalDurableQueue(tmp_path / "q", max_attempts=0)
    with pytest.raises(ConfigurationError):
        LocalDurableQueue(tmp_path / "q", synchronous="OFF")  # type: ignore[arg-type]


# -- redis adapter --------------------------------------------------------------------------------


async def test_redis_jobs_of_a_dead_consumer_go_to_another_after_the_idle_timeout(
    redis_url: str,
) -> None:
    from fathom.adapters.queue.redis import RedisStreamsQueue

    idle = 0.5
    dying = RedisStreamsQueue(redis_url, stream="fathom:test:dead", claim_idle_seconds=idle)
    await dying.enqueue("t", {"i": 1})
    started = asyncio.Event()

    async def stuck(jobs: list[Job]) -> None:
        started.set()
        await asyncio.Event().wait()

    consumer = asyncio.create_task(dying.consume(stuck))
    await asyncio.wait_for(started.wait(), TIMEOUT)
    # Dies without acknowledging or handing back: its connections go first, then the task.
    await dying.close()
    died = time.monotonic()
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer

    survivor = RedisStreamsQueue(redis_url, stream="fathom:test:dead", claim_idle_seconds=idle)
    recorder = Recorder()
    try:
        async with Consuming(survivor, recorder):
            await recorder.wait_until(lambda: bool(recorder.deliveries))
            await eventually(lambda: _pending_is(survivor, 0))
    finally:
        await survivor.close()
    (at, job), *_ = recorder.deliveries
    assert job.payload == {"i": 1} and job.attempts == 0
    assert at - died >= idle * 0.9  # not before the dead consumer's entries went idle


async def test_redis_a_slow_handler_keeps_its_jobs(redis_url: str) -> None:
    """A live consumer refreshes what it holds, so a handler slower than the claim timeout
    is not doubled by another consumer."""
    from fathom.adapters.queue.redis import RedisStreamsQueue

    idle = 0.3
    first = RedisStreamsQueue(redis_url, stream="fathom:test:slow", claim_idle_seconds=idle)
    second = RedisStreamsQueue(redis_url, stream="fathom:test:slow", claim_idle_seconds=idle)
    await first.enqueue("t", {"i": 1})
    recorder = Recorder()

    async def slow(jobs: list[Job]) -> None:
        await recorder(jobs)
        await asyncio.sleep(idle * 4)

    try:
        async with Consuming(first, slow):
            await recorder.wait_until(lambda: bool(recorder.deliveries))
            async with Consuming(second, slow):
                await eventually(lambda: _pending_is(first, 0))
                await asyncio.sleep(idle * 2)
    finally:
        await first.close()
        await second.close()
    assert recorder.payloads == [1]


async def test_redis_consumers_in_two_processes_share_the_work(redis_url: str) -> None:
    from fathom.adapters.queue.redis import RedisStreamsQueue

    queues = [RedisStreamsQueue(redis_url, stream="fathom:test:shared") for _ in range(2)]
    await asyncio.gather(*(queues[i % 2].enqueue("t", {"i": i}) for i in range(200)))
    recorders = [Recorder(), Recorder()]
    try:
        async with (
            Consuming(queues[0], recorders[0], batch_size=8),
            Consuming(queues[1], recorders[1], batch_size=8),
        ):
            await eventually(lambda: _pending_is(queues[0], 0))
    finally:
        for queue in queues:
            await queue.close()
    delivered = recorders[0].payloads + recorders[1].payloads
    assert collections.Counter(delivered) == collections.Counter(range(200))
    assert recorders[0].payloads and recorders[1].payloads


async def test_redis_queue_reports_an_unreachable_server() -> None:
    pytest.importorskip("redis")
    from fathom.adapters.queue.redis import RedisStreamsQueue

    queue = RedisStreamsQueue("redis://:s3cret@127.0.0.1:1/0", connect_timeout=1)
    try:
        for operation in (queue.ping, lambda: queue.enqueue("t", {}), queue.pending):
            with pytest.raises(Unavailable) as caught:
                await operation()
            assert caught.value.message.startswith("FATHOM_QUEUE__URL=redis://:***@127.0.0.1:1")
            assert "s3cret" not in caught.value.message
    finally:
        await queue.close()


def test_redis_queue_rejects_bad_options() -> None:
    pytest.importorskip("redis")
    from fathom.adapters.queue.redis import RedisStreamsQueue

    with pytest.raises(ConfigurationError):
        RedisStreamsQueue("redis://127.0.0.1:1/0", max_attempts=0)
    with pytest.raises(ConfigurationError):
        RedisStreamsQueue("redis://127.0.0.1:1/0", claim_idle_seconds=0)
    with pytest.raises(ConfigurationError, match="FATHOM_QUEUE__URL"):
        RedisStreamsQueue("http://127.0.0.1:1/0")


async def _pending_is(queue: JobQueue, expected: int) -> bool:
    return await queue.pending() == expected


async def _has_dead_letters(queue: JobQueue) -> bool:
    return bool(await queue.dead_letters())
