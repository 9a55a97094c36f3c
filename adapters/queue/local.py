"""A durable in-process `JobQueue` on a SQLite file: the default for single-node installs.

One dedicated thread owns the only connection. Coroutines hand it commands through a
thread-safe queue and await an asyncio future that is resolved only after the command's
transaction has committed. The thread drains every command waiting at that moment and runs
them all in one transaction (group commit), so under concurrency many enqueues share one
commit while a lone enqueue is never held back waiting for company.

Leases: a consumer takes due jobs by pushing their `available_at` to the lease expiry, so an
expired lease makes a job due again without a separate scan, and the due-index never walks
over in-flight jobs. One process owns the file (enforced with a lock file), so on open every
lease left by a previous, crashed process is cleared and its jobs are redelivered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue as stdlib_queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import orjson

from fathom.adapters.queue.jobs import check_job, failure_text, retry_delay
from fathom.core.domain.errors import ConfigurationError, InvalidInput, Unavailable
from fathom.core.ports.queue import Job, JobHandler, JobsFailed

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; the single-owner rule is unchecked
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    -- AUTOINCREMENT so ids are never reused, even after the table has been emptied.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    available_at REAL    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_until REAL,
    last_error   TEXT,
    created_at   REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (available_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT,
    created_at REAL    NOT NULL,
    failed_at  REAL    NOT NULL
);
"""

# Upper bound on commands per transaction, so one huge burst cannot delay every caller in it
# behind a single enormous commit.
_MAX_GROUP = 2048
# SQLite's own auto-checkpoint runs inside whichever COMMIT crosses the threshold, stalling
# every caller of that group for two fsyncs. Instead the writer checkpoints when it finds no
# command waiting (after this many groups, or after this long without new commands), and
# only forces one mid-stream when the WAL keeps growing under sustained load.
_CHECKPOINT_IDLE_GROUPS = 64
_CHECKPOINT_IDLE_SECONDS = 1.0
_CHECKPOINT_FORCE_GROUPS = 1000

_ENQUEUE = "enqueue"
_OP = "op"
_STOP = "stop"

_Outcome = tuple["_Command", Any, BaseException | None]


@dataclass(slots=True)
class _Command:
    kind: str
    # _OP: the work, run on the writer thread inside the group's transaction.
    op: Callable[[sqlite3.Connection], Any] | None = None
    # _ENQUEUE: (kind, payload bytes, available_at, created_at).
    row: tuple[str, bytes, float, float] | None = None
    # None for fire-and-forget commands.
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None
    # Called with the result when the caller gave up waiting (cancelled) but the command
    # committed anyway, e.g. to hand back jobs leased for a consumer that no longer exists.
    on_orphan: Callable[[Any], None] | None = None


class LocalDurableQueue:
    """`JobQueue` backed by SQLite in WAL mode.

    - `max_attempts`: deliveries before a job that keeps failing moves to `dead_letters`.
    - `backoff_base_seconds`: a failed job waits base × 2^(attempts-1) before the next try.
    - `poll_interval`: longest idle sleep of a consumer; in-process enqueues wake it sooner.
    - `lease_seconds`: how long a delivered job is hidden from other consumers in this process;
      a handler slower than this may see its jobs delivered twice (at-least-once).
    - `synchronous`: "NORMAL" survives any process crash; "FULL" also survives power loss or
      an OS crash, at one WAL fsync per group commit.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_attempts: int = 6,
        backoff_base_seconds: float = 5.0,
        poll_interval: float = 0.05,
        lease_seconds: float = 300.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if backoff_base_seconds < 0 or poll_interval <= 0 or lease_seconds <= 0:
            raise ConfigurationError(
                "backoff_base_seconds must be >= 0, poll_interval and lease_seconds > 0"
            )
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigurationError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._path = Path(path)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base_seconds
        self._poll_interval = poll_interval
        self._lease_seconds = lease_seconds
        self._synchronous = synchronous
        self._commands: stdlib_queue.SimpleQueue[_Command] = stdlib_queue.SimpleQueue()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._next_id = 1
        self._lock_fd: int | None = None
        self._groups_since_checkpoint = 0
        # The thread opens the database itself (a sqlite3 connection belongs to the thread
        # that made it); commands submitted meanwhile simply wait in the command queue.
        self._thread = threading.Thread(
            target=self._run, name=f"fathom-queue:{self._path.name}", daemon=True
        )
        self._thread.start()

    # -- JobQueue ----------------------------------------------------------------------------

    async def enqueue(self, kind: str, payload: dict[str, Any], delay_seconds: float = 0) -> str:
        check_job(kind, payload, delay_seconds)
        try:
            body = orjson.dumps(payload)
        except TypeError as exc:
            raise InvalidInput(f"job payload is not JSON-serialisable: {exc}") from exc
        now = time.time()
        job_id: str = await self._submit(_ENQUEUE, row=(kind, body, now + delay_seconds, now))
        # Also for delayed jobs: an idle consumer recomputes how long it may sleep.
        self._wakeup.set()
        return job_id

    async def consume(self, handler: JobHandler, *, batch_size: int = 100) -> None:
        """Run until cancelled (or until the queue is closed).

        A batch is acked as a whole when `handler` returns and retried as a whole when it
        raises. Cancelling while a batch is in hand releases its jobs for immediate
        redelivery instead of leaving them leased.
        """
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1")
        lease = partial(self._lease_sync, limit=batch_size)
        while True:
            # Cleared before leasing: an enqueue committed after the lease's snapshot sets the
            # event after this point, so its wake-up cannot be lost.
            self._wakeup.clear()
            try:
                jobs, next_due = await self._submit(_OP, op=lease, on_orphan=self._release_orphan)
            except Unavailable:
                if self._closed:
                    return
                logger.exception("leasing jobs from %s failed; retrying", self._path)
                await asyncio.sleep(max(self._poll_interval, 1.0))  # don't spin on a sick disk
                continue
            if not jobs:
                await self._idle(next_due)
                continue
            ids = [int(job.id) for job in jobs]
            try:
                await handler(jobs)
            except asyncio.CancelledError:
                self._release_nowait(ids)
                raise
            except JobsFailed as exc:
                failed = {int(job.id) for job in exc.failed}
                logger.warning(
                    "job handler failed for %d of %d job(s): %r", len(failed), len(ids), exc.cause
                )
                settle = partial(
                    self._settle_sync,
                    done=[job_id for job_id in ids if job_id not in failed],
                    failed=sorted(failed),
                    error=failure_text(exc.cause),
                )
            except Exception as exc:
                logger.warning("job handler failed for %d job(s): %r", len(jobs), exc)
                error = failure_text(exc)
                settle = partial(self._nack_sync, ids=ids, error=error)
            else:
                settle = partial(self._ack_sync, ids=ids)
            try:
                await self._submit(_OP, op=settle)
            except Unavailable:
                if self._closed:
                    return  # still leased on disk, so redelivered when the file is reopened
                # Also still leased: redelivered once the lease expires.
                logger.exception("settling %d job(s) in %s failed", len(ids), self._path)

    async def pending(self) -> int:
        count: int = await self._submit(
            _OP, op=lambda conn: conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        )
        return count

    async def ping(self) -> None:
        await self._submit(_OP, op=lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """Finish every command already submitted, then close the database and release it."""
        if not self._closed:
            self._closed = True
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self._commands.put(_Command(_STOP, loop=loop, future=future))
            await future
            self._wakeup.set()  # idle consumers notice the closure and return
        await asyncio.to_thread(self._thread.join)

    # -- administration ----------------------------------------------------------------------

    async def requeue_dead_letters(self) -> int:
        moved: int = await self._submit(_OP, op=self._requeue_sync)
        if moved:
            self._wakeup.set()
        return moved

    async def dead_letters(self) -> list[Job]:
        """Jobs that failed `max_attempts` times, oldest failure first.

        `meta` holds `last_error`, `created_at` and `failed_at` (Unix seconds).
        """
        return await self._submit(_OP, op=self._dead_letters_sync)

    # -- event-loop side plumbing ------------------------------------------------------------

    def _submit(
        self,
        kind: str,
        *,
        op: Callable[[sqlite3.Connection], Any] | None = None,
        row: tuple[str, bytes, float, float] | None = None,
        on_orphan: Callable[[Any], None] | None = None,
    ) -> asyncio.Future[Any]:
        if self._closed:
            raise Unavailable(f"job queue {str(self._path)!r} is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._commands.put(_Command(kind, op, row, loop, future, on_orphan))
        return future

    def _release_nowait(self, ids: list[int]) -> None:
        # Fire-and-forget: used from cancellation paths that must not await. Once closed,
        # there is nothing to do: leases are cleared when the file is next opened.
        if not self._closed:
            self._commands.put(_Command(_OP, op=partial(self._release_sync, ids=ids)))

    def _release_orphan(self, result: tuple[list[Job], float | None]) -> None:
        jobs, _next_due = result
        if jobs:
            self._release_nowait([int(job.id) for job in jobs])

    async def _idle(self, next_due: float | None) -> None:
        timeout = self._poll_interval
        if next_due is not None:
            timeout = min(timeout, max(0.0, next_due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    @staticmethod
    def _resolve(outcomes: list[_Outcome]) -> None:
        for command, result, error in outcomes:
            future = command.future
            if future is None:
                continue
            if future.done():  # the awaiting caller was cancelled
                if error is None and command.on_orphan is not None:
                    command.on_orphan(result)
            elif error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        open_error: BaseException | None = None
        try:
            connection = self._open_sync()
        except BaseException as exc:
            open_error = (
                exc
                if isinstance(exc, ConfigurationError)
                else ConfigurationError(f"job queue {str(self._path)!r} cannot be opened: {exc}")
            )
            self._unlock()
        while True:
            try:
                # Wake up after a quiet spell to checkpoint what the last groups wrote.
                idle_wait = _CHECKPOINT_IDLE_SECONDS if self._groups_since_checkpoint else None
                batch = [self._commands.get(timeout=idle_wait)]
            except stdlib_queue.Empty:
                assert connection is not None
                self._checkpoint(connection)
                continue
            while len(batch) < _MAX_GROUP:
                try:
                    batch.append(self._commands.get_nowait())
                except stdlib_queue.Empty:
                    break
            stop = next((command for command in batch if command.kind == _STOP), None)
            work = [command for command in batch if command.kind != _STOP]
            if connection is None:
                assert open_error is not None
                outcomes: list[_Outcome] = [(command, None, open_error) for command in work]
            else:
                try:
                    outcomes = self._execute(connection, work)
                except BaseException as exc:  # a bug here must not leave callers hanging
                    logger.exception("job-queue writer failed")
                    outcomes = [(command, None, exc) for command in work]
            if stop is not None:
                if connection is not None:
                    with contextlib.suppress(sqlite3.Error):
                        connection.close()
                self._unlock()
                outcomes.append((stop, None, None))
            self._deliver(outcomes)
            if stop is not None:
                return
            if connection is not None and work:
                self._groups_since_checkpoint += 1
                if self._groups_since_checkpoint >= _CHECKPOINT_FORCE_GROUPS or (
                    self._groups_since_checkpoint >= _CHECKPOINT_IDLE_GROUPS
                    and self._commands.empty()
                ):
                    self._checkpoint(connection)

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        self._groups_since_checkpoint = 0
        try:
            # PASSIVE: copy what it can without waiting on anyone; the WAL is reused from
            # the start once everything in it has been copied.
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            logger.exception("checkpointing %s failed", self._path)

    def _open_sync(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        connection = sqlite3.connect(self._path, isolation_level=None)
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigurationError(
                    f"job queue {str(self._path)!r} cannot use WAL mode (got {mode!r})"
                )
            # In WAL mode a commit appends to the -wal file with write(2); NORMAL skips the
            # fsync per commit and only fsyncs at checkpoints. Bytes handed to the kernel
            # outlive the process, so every commit survives SIGKILL, OOM kills and segfaults;
            # only a power loss or kernel crash can drop the most recent commits (the file
            # stays consistent either way). FULL closes that gap at one fsync per group.
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA wal_autocheckpoint=0")  # see _CHECKPOINT_IDLE_GROUPS
            connection.executescript(_SCHEMA)
            # Whoever held these leases died with the previous process (we hold the lock).
            connection.execute(
                "UPDATE jobs SET available_at = ?, leased_until = NULL "
                "WHERE leased_until IS NOT NULL",
                (time.time(),),
            )
            # Ids are assigned here rather than by SQLite so a whole group of enqueues can be
            # inserted with one executemany; start past anything ever handed out.
            sequence = connection.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'"
            ).fetchone()
            highest = connection.execute(
                "SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM jobs "
                "UNION ALL SELECT MAX(id) FROM dead_letters)"
            ).fetchone()[0]
            self._next_id = max(sequence[0] if sequence else 0, highest or 0) + 1
        except BaseException:
            connection.close()
            raise
        return connection

    def _lock(self) -> None:
        if fcntl is None:
            return
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigurationError(
                f"job queue {str(self._path)!r} is already open in another process or queue "
                "instance; the local queue has a single owner (use a shared queue such as "
                "Redis to split web and worker processes)"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _execute(self, connection: sqlite3.Connection, work: list[_Command]) -> list[_Outcome]:
        """Run `work` in one transaction; each unit in a savepoint so one bad command fails
        alone, while a failed commit fails them all."""
        if not work:
            return []
        outcomes: list[_Outcome] = []
        aborted: BaseException | None = None
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [(command, None, _as_unavailable(exc)) for command in work]
        index = 0
        while index < len(work):
            end = index + 1
            if work[index].kind == _ENQUEUE:
                while end < len(work) and work[end].kind == _ENQUEUE:
                    end += 1
            unit = work[index:end]
            index = end
            try:
                connection.execute("SAVEPOINT unit")
                if unit[0].kind == _ENQUEUE:
                    results: list[Any] = self._insert_sync(connection, unit)
                else:
                    assert unit[0].op is not None
                    results = [unit[0].op(connection)]
                connection.execute("RELEASE unit")
            except Exception as exc:
                error = _as_unavailable(exc)
                try:
                    # Some errors (I/O, disk full) roll back the whole transaction, in which
                    # case the savepoint is gone and so is every earlier unit's work.
                    connection.execute("ROLLBACK TO unit")
                    connection.execute("RELEASE unit")
                except sqlite3.Error:
                    aborted = error
                    break
                outcomes.extend((command, None, error) for command in unit)
            else:
                outcomes.extend(
                    (command, result, None) for command, result in zip(unit, results, strict=True)
                )
        if aborted is None:
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                aborted = _as_unavailable(exc)
        if aborted is not None:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            return [(command, None, aborted) for command in work]
        return outcomes

    def _deliver(self, outcomes: list[_Outcome]) -> None:
        # One cross-thread wake-up per event loop per group, not one per future.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            command, _result, error = outcome
            if command.loop is None:
                if error is not None:
                    logger.error("background job-queue command failed: %r", error)
                continue
            by_loop.setdefault(command.loop, []).append(outcome)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                loop.call_soon_threadsafe(self._resolve, items)

    def _insert_sync(self, connection: sqlite3.Connection, unit: list[_Command]) -> list[str]:
        rows = []
        for command in unit:
            assert command.row is not None
            kind, body, available_at, created_at = command.row
            rows.append((self._next_id, kind, body, available_at, created_at))
            self._next_id += 1
        connection.executemany(
            "INSERT INTO jobs (id, kind, payload, available_at, attempts, created_at) "
            "VALUES (?, ?, ?, ?, 0, ?)",
            rows,
        )
        return [str(row[0]) for row in rows]

    def _lease_sync(
        self, connection: sqlite3.Connection, *, limit: int
    ) -> tuple[list[Job], float | None]:
        now = time.time()
        rows = connection.execute(
            "SELECT id, kind, payload, attempts, last_error, created_at FROM jobs "
            "WHERE available_at <= ? ORDER BY available_at, id LIMIT ?",
            (now, limit),
        ).fetchall()
        if rows:
            until = now + self._lease_seconds
            connection.executemany(
                "UPDATE jobs SET available_at = ?, leased_until = ? WHERE id = ?",
                [(until, until, row[0]) for row in rows],
            )
        next_due = connection.execute("SELECT MIN(available_at) FROM jobs").fetchone()[0]
        jobs = [
            Job(
                id=str(job_id),
                kind=kind,
                payload=orjson.loads(payload),
                attempts=attempts,
                meta={"last_error": last_error, "created_at": created_at},
            )
            for job_id, kind, payload, attempts, last_error, created_at in rows
        ]
        return jobs, next_due

    def _ack_sync(self, connection: sqlite3.Connection, *, ids: list[int]) -> None:
        connection.executemany("DELETE FROM jobs WHERE id = ?", [(job_id,) for job_id in ids])

    def _settle_sync(
        self, connection: sqlite3.Connection, *, done: list[int], failed: list[int], error: str
    ) -> None:
        self._ack_sync(connection, ids=done)
        self._nack_sync(connection, ids=failed, error=error)

    def _nack_sync(self, connection: sqlite3.Connection, *, ids: list[int], error: str) -> None:
        now = time.time()
        for job_id in ids:
            row = connection.execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = ?, leased_until = NULL "
                "WHERE id = ? RETURNING attempts",
                (error, job_id),
            ).fetchall()
            if not row:
                continue  # already acked by a consumer that re-leased it after lease expiry
            attempts = row[0][0]
            if attempts >= self._max_attempts:
                connection.execute(
                    "INSERT OR REPLACE INTO dead_letters "
                    "(id, kind, payload, attempts, last_error, created_at, failed_at) "
                    "SELECT id, kind, payload, attempts, last_error, created_at, ? "
                    "FROM jobs WHERE id = ?",
                    (now, job_id),
                )
                connection.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            else:
                connection.execute(
                    "UPDATE jobs SET available_at = ? WHERE id = ?",
                    (now + retry_delay(self._backoff_base, attempts), job_id),
                )

    def _requeue_sync(self, connection: sqlite3.Connection) -> int:
        # A dead letter keeps its job's id, which no other job can have (ids are never reused).
        moved = connection.execute(
            "INSERT INTO jobs (id, kind, payload, available_at, attempts, created_at) "
            "SELECT id, kind, payload, ?, 0, created_at FROM dead_letters",
            (time.time(),),
        ).rowcount
        connection.execute("DELETE FROM dead_letters")
        return moved

    def _release_sync(self, connection: sqlite3.Connection, *, ids: list[int]) -> None:
        now = time.time()
        connection.executemany(
            "UPDATE jobs SET available_at = ?, leased_until = NULL "
            "WHERE id = ? AND leased_until IS NOT NULL",
            [(now, job_id) for job_id in ids],
        )

    def _dead_letters_sync(self, connection: sqlite3.Connection) -> list[Job]:
        rows = connection.execute(
            "SELECT id, kind, payload, attempts, last_error, created_at, failed_at "
            "FROM dead_letters ORDER BY failed_at, id"
        ).fetchall()
        return [
            Job(
                id=str(job_id),
                kind=kind,
                payload=orjson.loads(payload),
                attempts=attempts,
                meta={"last_error": last_error, "created_at": created_at, "failed_at": failed},
            )
            for job_id, kind, payload, attempts, last_error, created_at, failed in rows
        ]


def _as_unavailable(exc: BaseException) -> BaseException:
    # Storage failures reach callers as Unavailable (503: retry later), not as sqlite3 types
    # the HTTP edge knows nothing about; anything else is a bug and passes through untouched.
    if isinstance(exc, sqlite3.Error):
        error = Unavailable(f"job queue storage failed: {exc}")
        error.__cause__ = exc
        return error
    return exc
