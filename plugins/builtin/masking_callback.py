"""Server-side ingestion masking through an HTTP callback (Langfuse's EE feature, free here).

Enabled by `LANGFUSE_INGESTION_MASKING_CALLBACK_URL`; the other variables keep Langfuse's
names and defaults:

| variable                                           | default | meaning                      |
|----------------------------------------------------|---------|------------------------------|
| `LANGFUSE_INGESTION_MASKING_CALLBACK_URL`          | unset   | http(s) URL; unset = off     |
| `LANGFUSE_INGESTION_MASKING_CALLBACK_TIMEOUT_MS`   | 500     | per attempt, > 0             |
| `LANGFUSE_INGESTION_MASKING_CALLBACK_FAIL_CLOSED`  | false   | true: drop events on failure |
| `LANGFUSE_INGESTION_MASKING_MAX_RETRIES`           | 1       | retries after the first try  |
| `LANGFUSE_INGESTION_MASKING_PROPAGATED_HEADERS`    | ""      | comma list of request headers|

No licence key is needed, and unlike Langfuse (OTLP only) the callback sees every ingestion
path: legacy batches, OTLP spans (already converted) and scores.

Wire format. Langfuse POSTs its OTLP JSON as the body and continues with whatever JSON comes
back, which must have "the same structure, only values changed". Fathom masks Langfuse
ingestion events rather than OTLP, so the body is
`{"events": [{"id", "type", "timestamp", "body"}, ...]}` and the answer must be a 2xx with
the same object: `{"events": [...]}` of the same length, each item keeping its `id`, `type`
and `body.id` and having an object `body`. A generic callback that walks the JSON and rewrites
string leaves (the usual way to write one for Langfuse) works unchanged.
Headers: `Content-Type: application/json`, `X-Langfuse-Org-Id`, `X-Langfuse-Project-Id`, plus
each propagated header present on the original request (names matched case-insensitively,
sent in lower case; a repeated header is sent once, its values joined with ", " as Node does).

Failures. An attempt fails on a timeout (covering connect, send and reading the answer), a
connection error, any status outside 2xx (redirects are followed first), a body that does not
parse as JSON (whatever its Content-Type; an empty 204 counts as not JSON) or an answer that
breaks the schema. As in Langfuse, every failed attempt is retried, up to MAX_RETRIES times,
after Langfuse's backoff (100 ms doubling, at most 1 s). When the last attempt fails the
events go on unmasked (fail-open, the default) or are dropped (fail-closed); either way a
warning is logged and nothing is raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fathom.core.domain.errors import ConfigurationError
from fathom.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from fathom.core.ports.extensions import Masker
    from fathom.entrypoints.settings import Settings

log = logging.getLogger(__name__)

ENV_PREFIX = "LANGFUSE_INGESTION_MASKING_"

# RFC 9110 token: what a header name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the client session or this module owns: forwarding them would break the request,
# or let an ingesting client pretend to be another project towards the callback.
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "host",
        "x-langfuse-org-id",
        "x-langfuse-project-id",
    }
)
_MAX_BACKOFF_SECONDS = 1.0
# Mirrors the blob codec, so a masked event has the same JSON types as a stored one.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


class MaskingCallbackSettings(BaseSettings):
    """The `LANGFUSE_INGESTION_MASKING_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    callback_url: str | None = None
    callback_timeout_ms: int = Field(default=500, gt=0)
    callback_fail_closed: bool = False
    max_retries: int = Field(default=1, ge=0)
    propagated_headers: str = ""

    @field_validator("callback_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        # Langfuse treats an empty variable as unset; so does a Helm chart that renders "".
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("propagated_headers")
    @classmethod
    def _check_headers(cls, value: str) -> str:
        for name in _split_header_names(value):
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name in _RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by Fathom itself and cannot be propagated")
        return value

    @property
    def propagated_header_names(self) -> tuple[str, ...]:
        return _split_header_names(self.propagated_headers)


def _split_header_names(value: str) -> tuple[str, ...]:
    names = (part.strip().lower() for part in value.split(","))
    return tuple(dict.fromkeys(name for name in names if name))


def load_masking_settings() -> MaskingCallbackSettings:
    """Read the environment; a bad value becomes a `ConfigurationError` naming the variable."""
    try:
        return MaskingCallbackSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            problems.append(f"{ENV_PREFIX}{field.upper()}={error.get('input')!r}: {error['msg']}")
        message = "invalid ingestion masking settings: " + "; ".join(problems)
        raise ConfigurationError(message) from None


class _CallbackFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MaskingCallback:
    """A `Masker` that has an HTTP endpoint rewrite the events (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_ms: int = 500,
        fail_closed: bool = False,
        max_retries: int = 1,
        propagated_headers: Iterable[str] = (),
        backoff_base_seconds: float = 0.1,
    ) -> None:
        self.url = url
        self.timeout_seconds = timeout_ms / 1000
        self.fail_closed = fail_closed
        self.max_retries = max_retries
        self.propagated_headers = frozenset(name.lower() for name in propagated_headers)
        self._backoff_base_seconds = backoff_base_seconds
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, config: MaskingCallbackSettings) -> MaskingCallback:
        if config.callback_url is None:
            raise ConfigurationError(f"{ENV_PREFIX}CALLBACK_URL is not set")
        return cls(
            config.callback_url,
            timeout_ms=config.callback_timeout_ms,
            fail_closed=config.callback_fail_closed,
            max_retries=config.max_retries,
            propagated_headers=config.propagated_header_names,
        )

    async def mask(
        self,
        project_id: str,
        organization_id: str,
        events: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        if not events:
            return events
        attempts = 0
        try:
            body = orjson.dumps({"events": events}, option=_ORJSON_OPTIONS, default=str)
            request_headers = self._request_headers(project_id, organization_id, headers)
            while True:
                attempts += 1
                try:
                    return await self._attempt(body, request_headers, events)
                except _CallbackFailure as failure:
                    if attempts > self.max_retries:
                        raise
                    log.debug(
                        "ingestion masking callback attempt %d failed: %s",
                        attempts,
                        failure.reason,
                    )
                    backoff = self._backoff_base_seconds * 2 ** (attempts - 1)
                    await asyncio.sleep(min(backoff, _MAX_BACKOFF_SECONDS))
        except Exception as exc:  # the ingestion path must get an answer, never an error
            reason = exc.reason if isinstance(exc, _CallbackFailure) else repr(exc)
            return self._on_failure(project_id, organization_id, events, reason, attempts)

    async def close(self) -> None:
        session, self._session, self._session_loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

    def _request_headers(
        self, project_id: str, organization_id: str, incoming: Mapping[str, str]
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.propagated_headers:
            # Plain dicts and aiohttp's CIMultiDictProxy alike. Langfuse reads Node's
            # `req.headers`, which folds a repeated header into one ", "-joined value.
            for name, value in incoming.items():
                key = name.lower()
                if key in self.propagated_headers:
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
        headers["Content-Type"] = "application/json"
        headers["X-Langfuse-Org-Id"] = organization_id
        headers["X-Langfuse-Project-Id"] = project_id
        return headers

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        # A session is bound to the loop it was made on; a second loop (tests, a CLI that
        # calls asyncio.run twice) needs its own.
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
            self._session_loop = loop
        return self._session

    async def _attempt(
        self, body: bytes, headers: dict[str, str], originals: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        session = self._client()
        try:
            # One deadline for connect, send and reading the answer.
            async with asyncio.timeout(self.timeout_seconds):
                async with session.post(self.url, data=body, headers=headers) as response:
                    status = response.status
                    raw = await response.read()
        except TimeoutError as exc:
            raise _CallbackFailure(
                f"no answer within {self.timeout_seconds * 1000:.0f} ms"
            ) from exc
        except aiohttp.ClientError as exc:
            raise _CallbackFailure(f"request failed: {exc!r}") from exc
        if not 200 <= status < 300:
            excerpt = raw[:200].decode("utf-8", errors="replace")
            raise _CallbackFailure(f"HTTP {status}: {excerpt}")
        try:
            # Like `response.json()` in Langfuse: the body decides, not the Content-Type.
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _CallbackFailure(f"answer is not JSON: {exc}") from exc
        return _validated(payload, originals)

    def _on_failure(
        self,
        project_id: str,
        organization_id: str,
        events: list[dict[str, Any]],
        reason: str,
        attempts: int,
    ) -> list[dict[str, Any]]:
        outcome = "dropping them (fail-closed)" if self.fail_closed else "keeping them unmasked"
        log.warning(
            "ingestion masking callback failed after %d attempt(s): %s; %s: %d event(s) of "
            "project %s (organization %s)",
            attempts,
            reason,
            outcome,
            len(events),
            project_id,
            organization_id,
        )
        return [] if self.fail_closed else events


def _validated(payload: Any, originals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The masked events, if the answer kept the schema; shallow checks only (hot path)."""

    def broken(why: str) -> _CallbackFailure:
        return _CallbackFailure(f"answer breaks the schema: {why}")

    if type(payload) is not dict or type(payload.get("events")) is not list:
        raise broken('expected an object with an "events" array')
    masked: list[Any] = payload["events"]
    if len(masked) != len(originals):
        raise broken(f"{len(masked)} events returned for {len(originals)} sent")
    for index, (new, old) in enumerate(zip(masked, originals, strict=True)):
        if type(new) is not dict:
            raise broken(f"event {index} is not an object")
        if new.get("id") != old.get("id") or new.get("type") != old.get("type"):
            raise broken(f"event {index} changed its id or type")
        new_body, old_body = new.get("body"), old.get("body")
        if type(new_body) is not dict:
            raise broken(f"event {index} has no object body")
        # A changed entity id would write the masked data onto another trace or observation.
        if isinstance(old_body, dict) and new_body.get("id") != old_body.get("id"):
            raise broken(f"event {index} changed body.id")
    return masked


@hookimpl
def fathom_maskers(settings: Settings) -> list[Masker]:
    config = load_masking_settings()
    if config.callback_url is None:
        return []
    return [MaskingCallback.from_settings(config)]
