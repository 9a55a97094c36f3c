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
path: OTLP exports, legacy batches and scores. Masking happens before anything is stored.

Wire format.
- OTLP exports (`POST /api/public/otel/v1/traces`), as Langfuse sends them: the body is the
  export's `resourceSpans` array in OTLP/JSON form. A JSON export's array is sent as
  received; a protobuf export's as protobuf's JSON mapping writes it (camelCase names, ids
  and bytes in base64, 64-bit integers as strings, enums by name), like Langfuse's own
  protobuf decoding. The answer must be a 2xx with the same structure, only values
  changed: the same keys in every object, the same length of every array, and every span's
  `traceId`, `spanId` and `parentSpanId` unchanged. A callback written for Langfuse that
  rewrites attribute values (`value.stringValue` of `langfuse.observation.input`, say)
  works unchanged.
- Legacy batches and scores (Fathom's addition): the body is
  `{"events": [{"id", "type", "timestamp", "body"}, ...]}` and the answer must be the same
  object: `{"events": [...]}` of the same length, each item keeping its `id`, `type` and
  `body.id` and having an object `body`.
A generic callback that walks the JSON and rewrites string leaves (the usual way to write
one) works on both.
Headers: `Content-Type: application/json`, `X-Langfuse-Org-Id`, `X-Langfuse-Project-Id`, plus
each propagated header present on the original request (names matched case-insensitively,
sent in lower case; a repeated header is sent once, its values joined with ", " as Node does).

Failures. An attempt fails on a timeout (covering connect, send and reading the answer), a
connection error, any status outside 2xx (redirects are followed first), a body that does not
parse as JSON (whatever its Content-Type; an empty 204 counts as not JSON) or an answer that
breaks the schema. As in Langfuse, every failed attempt is retried, up to MAX_RETRIES times,
after Langfuse's backoff (100 ms doubling, at most 1 s). When the last attempt fails the
export or events go on unmasked (fail-open, the default) or are dropped (fail-closed);
either way a warning is logged and nothing is raised, and the client's request succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fathom.core.domain.errors import ConfigurationError
from fathom.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from fathom.core.ports.extensions import OtlpMasker
    from fathom.entrypoints.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    """An `OtlpMasker` that has an HTTP endpoint rewrite OTLP exports and events (see the
    module docstring)."""

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
        masked = await self._masked(
            project_id,
            organization_id,
            headers,
            {"events": events},
            lambda answer: _validated_events(answer, events),
            f"{len(events)} event(s)",
        )
        if masked is None:
            return [] if self.fail_closed else events
        return masked

    async def mask_otlp(
        self,
        project_id: str,
        organization_id: str,
        resource_spans: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]] | None:
        if not resource_spans:
            return resource_spans
        masked = await self._masked(
            project_id,
            organization_id,
            headers,
            resource_spans,
            lambda answer: _validated_export(answer, resource_spans),
            "an OTLP export",
        )
        if masked is None:
            return None if self.fail_closed else resource_spans
        return masked

    async def _masked(
        self,
        project_id: str,
        organization_id: str,
        headers: Mapping[str, str],
        payload: Any,
        validate: Callable[[Any], T],
        what: str,
    ) -> T | None:
        """The callback's validated answer for `payload`, or None (logged) when every
        attempt failed."""
        attempts = 0
        try:
            body = orjson.dumps(payload, option=_ORJSON_OPTIONS, default=str)
            request_headers = self._request_headers(project_id, organization_id, headers)
            while True:
                attempts += 1
                try:
                    return validate(await self._attempt(body, request_headers))
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
            outcome = "dropping" if self.fail_closed else "keeping unmasked"
            log.warning(
                "ingestion masking callback failed after %d attempt(s): %s; %s %s of "
                "project %s (organization %s)",
                attempts,
                reason,
                outcome + (" (fail-closed)" if self.fail_closed else ""),
                what,
                project_id,
                organization_id,
            )
            return None

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

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> Any:
        """The JSON answer of one attempt."""
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
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _CallbackFailure(f"answer is not JSON: {exc}") from exc


def _broken(why: str) -> _CallbackFailure:
    return _CallbackFailure(f"answer breaks the schema: {why}")


def _validated_events(payload: Any, originals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The masked events, if the answer kept the schema; shallow checks only (hot path)."""
    broken = _broken

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


# Span fields that say which span an OTLP span is: masking must leave them as they are, or
# the masked data would be written onto another trace or observation.
_SPAN_IDENTITY = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id"})


def _validated_export(payload: Any, original: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The masked `resourceSpans`, if the answer has the structure that was sent: the same
    keys in every object, the same length of every array, a value where there was a value,
    and every span's ids unchanged (Langfuse: "only values may change")."""
    _same_structure(payload, original, "resourceSpans")
    return payload  # type: ignore[no-any-return]


def _same_structure(new: Any, old: Any, where: str) -> None:
    if type(old) is dict:
        if type(new) is not dict or new.keys() != old.keys():
            raise _broken(f"{where} does not keep its fields")
        for key, value in old.items():
            if key in _SPAN_IDENTITY and new[key] != value:
                raise _broken(f"{where}.{key} changed")
            _same_structure(new[key], value, f"{where}.{key}")
    elif type(old) is list:
        if type(new) is not list or len(new) != len(old):
            raise _broken(f"{where} does not keep its length")
        for index, (item, old_item) in enumerate(zip(new, old, strict=True)):
            _same_structure(item, old_item, f"{where}[{index}]")
    elif type(new) is dict or type(new) is list:
        raise _broken(f"{where} is no longer a single value")


@hookimpl
def fathom_maskers(settings: Settings) -> list[OtlpMasker]:
    config = load_masking_settings()
    if config.callback_url is None:
        return []
    return [MaskingCallback.from_settings(config)]
