"""What every job queue adapter does alike: check a job before storing it, word a handler's
failure, and space the retries. Kept in one place so the queues answer the same input with
the same error and retry on the same schedule whichever one a deployment runs."""

from __future__ import annotations

import math
from typing import Any

from fathom.core.domain.errors import InvalidInput

# Keeps a pathological max_attempts from overflowing the float backoff.
_MAX_BACKOFF_EXPONENT = 32
_MAX_ERROR_CHARS = 4000


def check_job(kind: str, payload: dict[str, Any], delay_seconds: float) -> None:
    """Reject what no queue may store, before anything is written."""
    if not kind:
        raise InvalidInput("job kind must be a non-empty string")
    if not isinstance(payload, dict):
        raise InvalidInput("job payload must be a JSON object")
    if not (0 <= delay_seconds < math.inf):
        raise InvalidInput(f"delay_seconds must be finite and >= 0, not {delay_seconds!r}")


def failure_text(exc: BaseException) -> str:
    """A failed handler's error as kept with its jobs, bounded so a huge message cannot bloat
    every retry of the job."""
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]


def retry_delay(backoff_base_seconds: float, attempts: int) -> float:
    """Seconds before the next try of a job that has failed `attempts` times: doubling."""
    exponent = min(attempts - 1, _MAX_BACKOFF_EXPONENT)
    return backoff_base_seconds * 2**exponent
