"""`JobQueue` on Redis Streams: the shared queue of a scaled-out deployment (web and worker
processes on several machines).

Layout, for a stream key `S` (default `fathom:jobs`):

- `S` — due jobs, one entry per job (field `job`: the JSON document of the job), read by one
  consumer group. An entry is deleted once acknowledged, so `XLEN S` is exactly the jobs not
  yet acknowledged (waiting or in flight).
- `S:delayed` — a sorted set of jobs due later (delayed enqueues and retries), scored by their
  due time in milliseconds of the Redis server's clock; consumers move due ones into `S`
  atomically (a Lua script), so however many consumers race, each job moves once.
- `S:dead` — a stream of jobs that failed `max_attempts` times (capped at `dead_letter_limit`).

A consumer reads new entries with XREADGROUP (BLOCK, so an XADD from any process wakes it at
once), acknowledges a batch with XACK+XDEL when the handler returns, and on failure replaces
each entry with a retry in `S:delayed` (exponential backoff, the attempt count carried in the
job) or a dead letter — all in one Lua script, so a job is never lost or doubled between the
two. While a handler runs, the consumer keeps resetting its entries' idle time (XCLAIM to
itself, JUSTID); entries of a consumer that died stop being refreshed, and after
`claim_idle_seconds` another consumer takes them over with XAUTOCLAIM and runs them again.
Delivery is at-least-once, as with the local queue.

Durability is what the Redis server gives: an acknowledged enqueue is in its memory and, with
`appendonly yes`, in its append-only file (`appendfsync everysec` may lose the last second
on a power loss or kernel crash, `always` loses nothing). Production deployments should turn
AOF on; `wait_replicas` also waits until that many replicas have the write. The tests run
without persistence. For Redis Cluster give the stream a hash tag (`{fathom}:jobs`) so the
three keys share a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from fathom.adapters.queue.jobs import check_job, failure_text, retry_delay
from fathom.core.domain.errors import ConfigurationError, InvalidInput, Unavailable
from fathom.core.ports.queue import Job, JobHandler, JobsFailed

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Due jobs moved from the delayed set per script call: bounds the time Redis spends in it.
_PROMOTE_LIMIT = 500

# KEYS: delayed, stream. ARGV: limit. Returns {moved, ms until the next delayed job or -1}.
_PROMOTE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', job)
  redis.call('ZREM', KEYS[1], job)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then return {#due, -1} end
return {#due, math.max(0, tonumber(first[2]) - now)}
"""

# KEYS: delayed. ARGV: delay ms, job. Due time on the server's clock, like every score.
_SCHEDULE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return 1
"""

# KEYS: stream, delayed, dead. ARGV: group, dead-letter cap, then per entry: id, action,
# job, delay ms. Only entries this consumer still owns in the group (XACK returns 1) are
# settled, so a job another consumer took over is not retried twice.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local settled = 0
for i = 3, #ARGV, 4 do
  local id, action, job, delay = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    redis.call('XDEL', KEYS[1], id)
    if action == 'retry' then
      redis.call('ZADD', KEYS[2], now + delay, job)
    elseif action == 'dead' then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[2]), '*', 'job', job)
    elseif action == 'release' then
      redis.call('XADD', KEYS[1], '*', 'job', job)
    end
    settled = settled + 1
  end
end
return settled
"""


def masked_url(url: str) -> str:
    """The URL fit for logs and error messages: the password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass(slots=True)
class _Entry:
    stream_id: bytes
    job: Job


class RedisStreamsQueue:
    """`JobQueue` on Redis Streams with one consumer group.

    - `consumer`: this process's name in the group; by default host, pid and a random part,
      so a restarted process starts clean and what its predecessor held is reclaimed.
    - `max_attempts`, `backoff_base_seconds`: as the local queue (base × 2^(attempts-1)).
    - `block_ms`: longest idle wait of a consumer; enqueues wake it sooner.
    - `claim_idle_seconds`: how long a job held by a consumer that stopped refreshing it
      (it died) stays put before another consumer takes it over.
    - `wait_replicas`: after each enqueue, wait until that many replicas acknowledged it
      (Redis WAIT, up to `wait_timeout_ms`); 0 trusts the primary alone.
    - `max_connections`: the pool's size; callers beyond it wait (up to `connect_timeout`).
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "fathom:jobs",
        group: str = "fathom-workers",
        consumer: str | None = None,
        max_attempts: int = 6,
        backoff_base_seconds: float = 5.0,
        block_ms: int = 2000,
        claim_idle_seconds: float = 60.0,
        dead_letter_limit: int = 10_000,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
        setting: str = "FATHOM_QUEUE__URL",
    ) -> None:
        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if backoff_base_seconds < 0 or block_ms < 1 or claim_idle_seconds <= 0:
            raise ConfigurationError(
                "backoff_base_seconds must be >= 0, block_ms >= 1 and claim_idle_seconds > 0"
            )
        if not stream or not group:
            raise ConfigurationError("stream and group must be non-empty")
        self._where = f"{setting}={masked_url(url)}"
        try:
            # Blocking pool: a burst of concurrent enqueues waits for a free connection
            # instead of failing. No socket timeout: XREADGROUP legitimately blocks.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=connect_timeout,
                socket_connect_timeout=connect_timeout,
                health_check_interval=30,
            )
            self._client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        except ValueError as exc:
            raise ConfigurationError(f"{self._where}: not a Redis URL ({exc})") from None
        self._stream = stream
        self._delayed = f"{stream}:delayed"
        self._dead = f"{stream}:dead"
        self._group = group
        self._consumer = consumer or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base_seconds
        self._claim_idle_ms = max(1, int(claim_idle_seconds * 1000))
        # Often enough that live consumers' entries never reach the claim threshold.
        self._heartbeat_seconds = claim_idle_seconds / 3
        self._claim_every = claim_idle_seconds / 2
        self._block_ms = min(block_ms, max(1, int(self._claim_every * 1000)))
        self._dead_letter_limit = dead_letter_limit
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._promote = self._client.register_script(_PROMOTE)
        self._schedule = self._client.register_script(_SCHEDULE)
        self._settle = self._client.register_script(_SETTLE)
        self._closed = False
        self._closing = asyncio.Event()
        self._group_ready = False
        self._recovered = False
        # Tasks left to finish on their own (see `_call`); referenced so they are not lost.
        self._background: set[asyncio.Future[Any]] = set()

    # -- JobQueue ----------------------------------------------------------------------------

    async def enqueue(self, kind: str, payload: dict[str, Any], delay_seconds: float = 0) -> str:
        check_job(kind, payload, delay_seconds)
        job = Job(
            id=uuid.uuid4().hex,
            kind=kind,
            payload=payload,
            meta={"last_error": None, "created_at": time.time()},
        )
        try:
            document = _encode(job)
        except TypeError as exc:
            raise InvalidInput(f"job payload is not JSON-serialisable: {exc}") from exc
        self._check_open()
        try:
            if delay_seconds > 0:
                await _call(
                    self._schedule(keys=[self._delayed], args=[int(delay_seconds * 1000), document])
                )
            else:
                await _call(self._client.xadd(self._stream, {"job": document}))
            if self._wait_replicas:
                await _call(self._client.wait(self._wait_replicas, self._wait_timeout_ms))
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return job.id

    async def consume(self, handler: JobHandler, *, batch_size: int = 100) -> None:
        """Run until cancelled (or until the queue is closed).

        A batch is acked as a whole when `handler` returns and retried as a whole when it
        raises. Cancelling while a batch is in hand puts its jobs back at the end of the
        stream for another consumer; a consumer that dies instead (its process killed) loses
        them to whoever claims them after `claim_idle_seconds`.
        """
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1")
        last_claim = 0.0
        while not self._closed:
            try:
                await self._ensure_group()
                entries = await self._recover(batch_size)
                next_due_ms = await self._promote_due()
                if not entries and time.monotonic() - last_claim >= self._claim_every:
                    last_claim = time.monotonic()
                    entries = await self._claim(batch_size)
                if not entries:
                    block = self._block_ms if next_due_ms < 0 else min(self._block_ms, next_due_ms)
                    entries = await self._read(batch_size, max(1, block))
            except RedisError as exc:
                if self._closed:
                    return
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    self._group_ready = False  # the stream was deleted under us
                    continue
                logger.warning("reading jobs from %s failed; retrying: %r", self._where, exc)
                await self._sleep(1.0)  # don't spin against a Redis that is down
                continue
            if entries:
                await self._handle(handler, entries)

    async def pending(self) -> int:
        self._check_open()
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.xlen(self._stream)
            pipe.zcard(self._delayed)
            due, delayed = await _call(pipe.execute())
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return int(due) + int(delayed)

    async def ping(self) -> None:
        self._check_open()
        try:
            await _call(self._client.ping())
            await self._ensure_group()
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        """Stop consumers and drop the connections; jobs in flight stay pending in the
        group and are claimed by another consumer after `claim_idle_seconds`."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        await asyncio.sleep(0)  # let consumers blocked in a read notice before the pool goes
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    # -- administration ----------------------------------------------------------------------

    async def dead_letters(self) -> list[Job]:
        """Jobs that failed `max_attempts` times, oldest failure first.

        `meta` holds `last_error`, `created_at` and `failed_at` (Unix seconds)."""
        self._check_open()
        try:
            rows = await _call(self._client.xrange(self._dead))
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        jobs = []
        for _stream_id, fields in rows:
            job = _decode(fields)
            if job is not None:
                jobs.append(job)
        return jobs

    async def requeue_dead_letters(self) -> int:
        self._check_open()
        try:
            rows = await _call(self._client.xrange(self._dead))
            if not rows:
                return 0
            # One MULTI/EXEC: each dead letter leaves the dead stream as it enters the queue.
            pipe = self._client.pipeline(transaction=True)
            moved = 0
            for stream_id, fields in rows:
                job = _decode(fields)
                if job is not None:
                    meta = {"last_error": None, "created_at": job.meta.get("created_at")}
                    fresh = Job(job.id, job.kind, job.payload, 0, meta)
                    pipe.xadd(self._stream, {"job": _encode(fresh)})
                    moved += 1
                pipe.xdel(self._dead, stream_id)
            await _call(pipe.execute())
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return moved

    # -- consuming ---------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the start of the stream: jobs enqueued before any worker existed count.
            await _call(
                self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _recover(self, batch_size: int) -> list[_Entry]:
        """Once per queue: what a previous process with the same (configured) consumer name
        left unacknowledged is redelivered at once instead of after the claim timeout."""
        if self._recovered:
            return []
        self._recovered = True
        response = await _call(
            self._client.xreadgroup(
                self._group, self._consumer, {self._stream: "0"}, count=batch_size
            )
        )
        return await self._entries(response)

    async def _promote_due(self) -> int:
        while True:
            moved, next_due_ms = await _call(
                self._promote(keys=[self._delayed, self._stream], args=[_PROMOTE_LIMIT])
            )
            if int(moved) < _PROMOTE_LIMIT:
                return int(next_due_ms)

    async def _claim(self, batch_size: int) -> list[_Entry]:
        response = await _call(
            self._client.xautoclaim(
                self._stream,
                self._group,
                self._consumer,
                min_idle_time=self._claim_idle_ms,
                start_id="0-0",
                count=batch_size,
            )
        )
        claimed = response[1] if len(response) > 1 else []
        entries = await self._entries([[self._stream, claimed]])
        if entries:
            logger.warning(
                "took over %d job(s) from a consumer idle for over %.0f s",
                len(entries),
                self._claim_idle_ms / 1000,
            )
        return entries

    async def _read(self, batch_size: int, block_ms: int) -> list[_Entry]:
        read = asyncio.ensure_future(
            self._client.xreadgroup(
                self._group,
                self._consumer,
                {self._stream: ">"},
                count=batch_size,
                block=block_ms,
            )
        )
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({read, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not read.done():
                # Cancelled or closing: the read is left to finish (at most block_ms), and
                # whatever it still delivers is handed back rather than left to the claim.
                read.add_done_callback(self._release_orphan)
        if not read.done():
            return []
        return await self._entries(read.result())

    def _release_orphan(self, read: asyncio.Future[Any]) -> None:
        if read.cancelled() or read.exception() is not None or self._closed:
            return
        rows = _stream_rows(read.result())
        if rows:
            task = asyncio.ensure_future(self._release_rows(rows))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _release_rows(self, rows: list[tuple[bytes, Any]]) -> None:
        settled: list[tuple[Any, ...]] = []
        for stream_id, fields in rows:
            raw = fields.get(b"job") if isinstance(fields, dict) else None
            settled.append((stream_id, "release", raw, 0) if raw else (stream_id, "ack", b"", 0))
        with contextlib.suppress(RedisError, OSError):
            await self._settle_script(settled)

    async def _entries(self, response: Any) -> list[_Entry]:
        """Decode an XREADGROUP/XAUTOCLAIM answer; entries that cannot be decoded go to the
        dead letters at once, so they cannot block the queue."""
        entries: list[_Entry] = []
        broken: list[bytes] = []
        for stream_id, fields in _stream_rows(response):
            job = _decode(fields) if fields else None
            if job is None:
                broken.append(stream_id)
            else:
                entries.append(_Entry(stream_id, job))
        if broken:
            logger.error("dead-lettering %d undecodable job(s) in %s", len(broken), self._stream)
            # An entry deleted since it was delivered has no fields: just acknowledge it.
            await _call(self._settle_script((stream_id, "ack", b"", 0) for stream_id in broken))
        return entries

    async def _handle(self, handler: JobHandler, entries: list[_Entry]) -> None:
        ids = [entry.stream_id for entry in entries]
        # Stopped by an event, never cancelled: a Redis command cancelled half-way may leave
        # its connection in an unknown state.
        done = asyncio.Event()
        heartbeat = asyncio.ensure_future(self._heartbeat(ids, done))
        try:
            await handler([entry.job for entry in entries])
        except asyncio.CancelledError:
            done.set()
            await self._release(entries)
            raise
        except JobsFailed as exc:
            done.set()
            failed_ids = {job.id for job in exc.failed}
            logger.warning(
                "job handler failed for %d of %d job(s): %r",
                len(failed_ids),
                len(entries),
                exc.cause,
            )
            failed = [entry for entry in entries if entry.job.id in failed_ids]
            await self._settle_entries(
                [
                    *((e.stream_id, "ack", b"", 0) for e in entries if e.job.id not in failed_ids),
                    *self._failure_args(failed, failure_text(exc.cause)),
                ]
            )
        except Exception as exc:
            done.set()
            logger.warning("job handler failed for %d job(s): %r", len(entries), exc)
            error = failure_text(exc)
            await self._settle_entries(self._failure_args(entries, error))
        else:
            done.set()
            await self._settle_entries([(entry.stream_id, "ack", b"", 0) for entry in entries])
        finally:
            done.set()
            self._background.add(heartbeat)
            heartbeat.add_done_callback(self._background.discard)

    async def _heartbeat(self, ids: list[bytes], done: asyncio.Event) -> None:
        # Entries idle for at least half a beat are this consumer's own: one another consumer
        # just took over (idle ~0) is not taken back.
        min_idle = int(self._heartbeat_seconds * 500)
        while not self._closed:  # a closed queue holds nothing: let others claim the jobs
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._heartbeat_seconds)
            if done.is_set() or self._closed:
                return
            try:
                await self._client.xclaim(
                    self._stream, self._group, self._consumer, min_idle, ids, justid=True
                )
            except RedisError as exc:
                logger.warning("refreshing %d job(s) in flight failed: %r", len(ids), exc)

    def _failure_args(self, entries: list[_Entry], error: str) -> list[tuple[Any, ...]]:
        settled: list[tuple[Any, ...]] = []
        failed_at = time.time()
        for entry in entries:
            job = entry.job
            attempts = job.attempts + 1
            meta = {**job.meta, "last_error": error}
            if attempts >= self._max_attempts:
                meta["failed_at"] = failed_at
                document = _encode(Job(job.id, job.kind, job.payload, attempts, meta))
                settled.append((entry.stream_id, "dead", document, 0))
            else:
                delay_ms = int(retry_delay(self._backoff_base, attempts) * 1000)
                document = _encode(Job(job.id, job.kind, job.payload, attempts, meta))
                settled.append((entry.stream_id, "retry", document, delay_ms))
        return settled

    async def _settle_entries(self, settled: Iterable[tuple[Any, ...]]) -> None:
        if self._closed:
            return  # still pending in the group: claimed by another consumer later
        try:
            await _call(self._settle_script(settled))
        except RedisError as exc:
            if self._closed:
                return  # still pending in the group: claimed by another consumer later
            logger.error(
                "settling jobs in %s failed (they will be redelivered): %r", self._where, exc
            )

    async def _release(self, entries: list[_Entry]) -> None:
        """Hand jobs back at once (the consumer is being cancelled, not crashing)."""
        if self._closed:
            return
        settled = [(entry.stream_id, "release", _encode(entry.job), 0) for entry in entries]
        # Shielded and bounded: the caller is waiting for this task to finish cancelling.
        release = asyncio.ensure_future(self._settle_script(settled))
        try:
            await asyncio.wait_for(asyncio.shield(release), timeout=2.0)
        except (TimeoutError, RedisError, OSError, asyncio.CancelledError) as exc:
            logger.warning("handing back %d job(s) failed; claimed later: %r", len(entries), exc)

    def _settle_script(self, settled: Iterable[tuple[Any, ...]]) -> Awaitable[Any]:
        """The settle script's call for (stream id, action, job document, delay ms) tuples,
        not yet awaited: the callers differ in how they await it."""
        args: list[Any] = [self._group, self._dead_letter_limit]
        for item in settled:
            args.extend(item)
        return self._settle(keys=[self._stream, self._delayed, self._dead], args=args)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # -- helpers -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable(f"job queue {self._stream!r} is closed")

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(f"{self._where}: the job queue is unreachable: {_one_line(exc)}")


async def _call(command: Awaitable[T]) -> T:
    """Await a Redis command without ever cancelling it.

    redis-py can swallow a cancellation that arrives as a command starts (the command then
    runs to its end and the caller never learns it was cancelled), so a cancelled caller
    leaves instead at once and the command finishes in the background."""
    task = asyncio.ensure_future(command)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_swallow)
        raise


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _encode(job: Job) -> bytes:
    return orjson.dumps(
        {
            "id": job.id,
            "kind": job.kind,
            "payload": job.payload,
            "attempts": job.attempts,
            "meta": job.meta,
        }
    )


def _decode(fields: Any) -> Job | None:
    raw = fields.get(b"job") if isinstance(fields, dict) else None
    if raw is None:
        return None
    try:
        document = orjson.loads(raw)
        return Job(
            id=str(document["id"]),
            kind=str(document["kind"]),
            payload=dict(document["payload"]),
            attempts=int(document["attempts"]),
            meta=dict(document.get("meta") or {}),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _stream_rows(response: Any) -> list[tuple[bytes, Any]]:
    """(id, fields) pairs of an XREADGROUP answer: [[stream, [(id, fields), ...]], ...]."""
    if not response:
        return []
    streams = response.items() if isinstance(response, dict) else response
    return [(entry[0], entry[1]) for _name, entries in streams for entry in entries or ()]
