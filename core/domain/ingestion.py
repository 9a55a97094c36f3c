"""Langfuse legacy ingestion events: per-event validation, parsing, ordering and grouping.

Events are the `{"id", "timestamp", "type", "body", "metadata"?}` dicts of
`POST /api/public/ingestion` (and the ones the OTLP module derives from spans). Each one parses
into a typed event or an `EventError` carrying Langfuse's per-event status and message; a bad
event never affects its neighbours.

This runs for every event on the hot path, so validation is hand-written: plain dict access,
`type(x) is str` checks and precomputed tables. Issues are collected rather than raised, so the
happy path never builds an exception.

Field semantics the merge relies on:
* fields copied verbatim by upstream (trace name/userId/sessionId/release/version, observation
  name/level/model) keep the difference between "absent" (`UNSET`) and an explicit JSON `null`
  (`None`), because a `null` there erases the stored value;
* every other optional field is `None` when absent or `null`: those never erase.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal

from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.scores import ScoreDataType, ScoreSource
from fathom.core.domain.tracing import (
    DEFAULT_ENVIRONMENT,
    Level,
    ObservationType,
    normalize_environment,
)

# --------------------------------------------------------------------------------------------
# Vocabulary


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


class EventType(enum.StrEnum):
    TRACE_CREATE = "trace-create"
    SCORE_CREATE = "score-create"
    EVENT_CREATE = "event-create"
    SPAN_CREATE = "span-create"
    SPAN_UPDATE = "span-update"
    GENERATION_CREATE = "generation-create"
    GENERATION_UPDATE = "generation-update"
    AGENT_CREATE = "agent-create"
    TOOL_CREATE = "tool-create"
    CHAIN_CREATE = "chain-create"
    RETRIEVER_CREATE = "retriever-create"
    EVALUATOR_CREATE = "evaluator-create"
    EMBEDDING_CREATE = "embedding-create"
    GUARDRAIL_CREATE = "guardrail-create"
    SDK_LOG = "sdk-log"
    # Legacy (SDK v1): the observation type travels in body.type.
    OBSERVATION_CREATE = "observation-create"
    OBSERVATION_UPDATE = "observation-update"


UPDATE_EVENT_TYPES: Final = frozenset(
    {EventType.SPAN_UPDATE, EventType.GENERATION_UPDATE, EventType.OBSERVATION_UPDATE}
)


class EntityKind(enum.StrEnum):
    """The `entityType` upstream groups events by (and names blob-storage folders after)."""

    TRACE = "trace"
    OBSERVATION = "observation"
    SCORE = "score"
    SDK_LOG = "sdk-log"


INVALID_REQUEST_MESSAGE: Final = "Invalid request data"
SCORE_TARGET_MESSAGE: Final = (
    "Provide exactly one of the following: traceId (with optional observationId), "
    "sessionId or datasetRunId. ObservationId requires traceId."
)
MAX_ID_LENGTH: Final = 800
MAX_TRACE_NAME_LENGTH: Final = 1000
MAX_TEXT_SCORE_LENGTH: Final = 500
CORRECTION_SCORE_NAME: Final = "output"

# --------------------------------------------------------------------------------------------
# Parsed events


@dataclass(slots=True)
class TraceEvent:
    """A `trace-create` event; `id` is None for an id-less body (accepted, never processed)."""

    kind: ClassVar[EntityKind] = EntityKind.TRACE
    is_update: ClassVar[bool] = False

    event_id: str
    timestamp: datetime
    id: str | None
    environment: str = DEFAULT_ENVIRONMENT
    body_timestamp: datetime | None = None
    name: str | None | Unset = UNSET
    user_id: str | None | Unset = UNSET
    session_id: str | None | Unset = UNSET
    release: str | None | Unset = UNSET
    version: str | None | Unset = UNSET
    input: Any = None
    output: Any = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    public: bool | None = None
    event_type: str = EventType.TRACE_CREATE
    # When the server accepted the batch (set by the worker): a new row's `created_at`.
    received_at: datetime | None = None


@dataclass(slots=True)
class ObservationEvent:
    """Any observation create/update. Usage and cost stay raw: the merge's hooks normalise them."""

    kind: ClassVar[EntityKind] = EntityKind.OBSERVATION

    event_id: str
    event_type: str
    timestamp: datetime
    id: str | None
    type: ObservationType
    is_update: bool = False
    environment: str = DEFAULT_ENVIRONMENT
    trace_id: str | None = None
    name: str | None | Unset = UNSET
    start_time: datetime | None = None
    end_time: datetime | None = None
    completion_start_time: datetime | None = None
    metadata: dict[str, Any] | None = None
    input: Any = None
    output: Any = None
    level: Level | None | Unset = UNSET
    status_message: str | None = None
    parent_observation_id: str | None = None
    version: str | None = None
    model: str | None | Unset = UNSET
    model_parameters: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    usage_details: dict[str, Any] | None = None
    cost_details: dict[str, Any] | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    # Experiment/dataset-run attributes the OTLP module puts on span-derived bodies.
    experiment: dict[str, Any] | None = None
    received_at: datetime | None = None


@dataclass(slots=True)
class ScoreEvent:
    """A `score-create` event (or a `POST /api/public/scores` item), value already typed."""

    kind: ClassVar[EntityKind] = EntityKind.SCORE
    is_update: ClassVar[bool] = False

    event_id: str
    timestamp: datetime
    id: str | None
    name: str
    data_type: ScoreDataType
    value: float | None = None
    # The SDKs send the call time as body `timestamp` (not in the schema); it wins when valid.
    body_timestamp: datetime | None = None
    string_value: str | None = None
    source: ScoreSource = ScoreSource.API
    environment: str = DEFAULT_ENVIRONMENT
    trace_id: str | None = None
    observation_id: str | None = None
    session_id: str | None = None
    dataset_run_id: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] | None = None
    config_id: str | None = None
    queue_id: str | None = None
    execution_trace_id: str | None = None
    event_type: str = EventType.SCORE_CREATE
    received_at: datetime | None = None


@dataclass(slots=True)
class SdkLogEvent:
    """An `sdk-log` event: logged by the web tier, never stored."""

    kind: ClassVar[EntityKind] = EntityKind.SDK_LOG
    is_update: ClassVar[bool] = False

    event_id: str
    timestamp: datetime
    id: str | None
    log: Any
    event_type: str = EventType.SDK_LOG
    received_at: datetime | None = None


ParsedEvent = TraceEvent | ObservationEvent | ScoreEvent | SdkLogEvent

# --------------------------------------------------------------------------------------------
# Errors


@dataclass(slots=True, frozen=True)
class Issue:
    """One problem with one field, shaped like a zod issue so clients see familiar text."""

    path: tuple[str | int, ...]
    message: str
    code: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "path": list(self.path), "message": self.message}


def format_issues(issues: Iterable[Issue]) -> str:
    # Upstream puts zod's `error.message` (the JSON of the issue list) into `error`.
    return json.dumps([issue.to_dict() for issue in issues], indent=2)


@dataclass(slots=True, frozen=True)
class EventError:
    """A per-event failure as reported in the 207 body's `errors` array.

    `id` is the envelope id when it was a string, else "unknown" (upstream's rule).
    """

    id: str
    status: int
    message: str
    error: str
    issues: tuple[Issue, ...] = ()

    @classmethod
    def invalid(cls, event_id: str, issues: Iterable[Issue]) -> EventError:
        issues = tuple(issues)
        return cls(event_id, 400, INVALID_REQUEST_MESSAGE, format_issues(issues), issues)

    @classmethod
    def access_denied(cls, event_id: str) -> EventError:
        return cls(event_id, 401, "Authentication error", "Access Scope Denied")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "message": self.message, "error": self.error}


class InvalidEvent(InvalidInput):
    """Raised by the request-level parsers (e.g. `POST /api/public/scores`)."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__(format_issues(self.issues))


# --------------------------------------------------------------------------------------------
# Field helpers. Each appends to `issues` and returns a harmless value on failure.

_JS_TYPE_NAMES: Final[dict[type, str]] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


def js_type_name(value: Any) -> str:
    """How upstream's validator names the JSON type of a value it did not expect."""
    if value is UNSET:
        return "undefined"
    return _JS_TYPE_NAMES.get(type(value), type(value).__name__)


def _type_issue(path: tuple[str | int, ...], expected: str, value: Any) -> Issue:
    return Issue(
        path, f"Invalid input: expected {expected}, received {js_type_name(value)}", "invalid_type"
    )


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 with a `T` and an offset (`Z` included) → aware UTC datetime; else None.

    Naive timestamps are refused like zod's `datetime({offset: true})` does.
    """
    if type(value) is not str:
        return None
    parsed = _RECENT_DATETIMES.get(value)
    if parsed is not None:
        return parsed
    if len(value) < 16 or value[10] != "T" or value[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    tz = parsed.tzinfo
    if tz is None:
        return None
    if tz is not UTC:
        parsed = parsed.astimezone(UTC)
    if len(_RECENT_DATETIMES) >= 1024:
        _RECENT_DATETIMES.clear()
    _RECENT_DATETIMES[value] = parsed
    return parsed


# Every event of a batch carries the same envelope timestamp (and converted spans share a
# handful of seconds): remembering recent strings skips most of the parsing.
_RECENT_DATETIMES: dict[str, datetime] = {}


def _datetime(body: dict[str, Any], key: str, issues: list[Issue]) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        if type(value) is str:
            issues.append(Issue(("body", key), "Invalid ISO datetime", "invalid_format"))
        else:
            issues.append(_type_issue(("body", key), "string", value))
    return parsed


def _id_issue(path: tuple[str | int, ...], value: Any) -> Issue | None:
    if type(value) is not str:
        return _type_issue(path, "string", value)
    if not value:
        return Issue(path, "Too small: expected string to have >=1 characters", "too_small")
    if len(value) > MAX_ID_LENGTH:
        return Issue(
            path, f"Too big: expected string to have <={MAX_ID_LENGTH} characters", "too_big"
        )
    if "\r" in value:
        return Issue(path, "ID cannot contain carriage return characters")
    return None


def _body_id(body: dict[str, Any], key: str, issues: list[Issue], required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            issues.append(_type_issue(("body", key), "string", body.get(key, UNSET)))
        return None
    issue = _id_issue(("body", key), value)
    if issue is not None:
        issues.append(issue)
        return None
    return value


def _string(body: dict[str, Any], key: str, issues: list[Issue]) -> str | None:
    value = body.get(key)
    if value is None or type(value) is str:
        return value
    issues.append(_type_issue(("body", key), "string", value))
    return None


def _verbatim_string(body: dict[str, Any], key: str, issues: list[Issue]) -> str | None | Unset:
    value = body.get(key, UNSET)
    if value is UNSET or value is None or type(value) is str:
        return value
    issues.append(_type_issue(("body", key), "string", value))
    return UNSET


# A project sends a handful of environment names, normalising each costs ~1.5 µs: memoise.
_ENVIRONMENT_CACHE: dict[str, str] = {}
_INTERNAL_ENVIRONMENT_CACHE: dict[str, str] = {}
_ENVIRONMENT_CACHE_SIZE: Final = 4096
_ENV_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _internal_environment(value: str) -> str:
    # Internal producers (prompt experiments, evals) may use the reserved langfuse-* names.
    env = value.lower()[:40]
    return env if env and _ENV_CHARS.issuperset(env) else DEFAULT_ENVIRONMENT


def _environment(body: dict[str, Any], issues: list[Issue], internal: bool) -> str:
    value = body.get("environment")
    if value is None:
        return DEFAULT_ENVIRONMENT
    if type(value) is not str:
        issues.append(_type_issue(("body", "environment"), "string", value))
        return DEFAULT_ENVIRONMENT
    cache = _INTERNAL_ENVIRONMENT_CACHE if internal else _ENVIRONMENT_CACHE
    env = cache.get(value)
    if env is None:
        env = _internal_environment(value) if internal else normalize_environment(value)
        if len(cache) >= _ENVIRONMENT_CACHE_SIZE:
            cache.clear()  # a client spraying names must not grow memory without bound
        cache[value] = env
    return env


def _js_string(value: Any) -> str:
    # Mirrors JavaScript's String(value) for the scalar metadata upstream wraps.
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def metadata_to_dict(value: Any) -> dict[str, Any] | None:
    """Upstream's `convertJsonSchemaToRecord`: non-object metadata lands under key `metadata`."""
    if value is None:
        return None
    if type(value) is dict:
        return value or None
    if type(value) is list:
        return {"metadata": json.dumps(value, separators=(",", ":"), ensure_ascii=False)}
    return {"metadata": _js_string(value)}


def _metadata(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("metadata")
    if value is None or type(value) is dict:
        return value or None
    return metadata_to_dict(value)


def _object(body: dict[str, Any], key: str, issues: list[Issue]) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None or type(value) is dict:
        return value
    issues.append(_type_issue(("body", key), "object", value))
    return None


_LEVEL_CHOICES: Final = '"DEBUG"|"DEFAULT"|"WARNING"|"ERROR"'
# Upstream's batch schema is a case-sensitive enum; the OTLP aliases (WARN, INFO, ...) are the
# span mapping's business, which hands over canonical names.
_LEVELS_BY_NAME: Final = {level.value: level for level in Level}


def _level(body: dict[str, Any], issues: list[Issue]) -> Level | None | Unset:
    value = body.get("level", UNSET)
    if value is UNSET or value is None:
        return value
    level = _LEVELS_BY_NAME.get(value) if type(value) is str else None
    if level is None:
        issues.append(
            Issue(
                ("body", "level"),
                f"Invalid option: expected one of {_LEVEL_CHOICES}",
                "invalid_value",
            )
        )
        return UNSET
    return level


_MODEL_PARAM_SCALARS: Final = frozenset({str, int, float, bool})


def _model_parameters(
    body: dict[str, Any], issues: list[Issue], legacy: bool
) -> dict[str, Any] | None:
    value = body.get("modelParameters")
    if value is None:
        return None
    if type(value) is not dict:
        issues.append(_type_issue(("body", "modelParameters"), "record", value))
        return None
    for key, item in value.items():
        kind = type(item)
        if item is None or kind in _MODEL_PARAM_SCALARS:
            continue
        if not legacy:
            if kind is list and all(type(x) is str for x in item):
                continue
            if kind is dict and all(type(x) is str for x in item.values()):
                continue
        issues.append(
            Issue(
                ("body", "modelParameters", key),
                "Invalid input: expected string, number, boolean"
                + ("" if legacy else ", string[] or record<string, string>"),
                "invalid_union",
            )
        )
    return value or None


_USAGE_UNITS: Final = ("CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS")
_USAGE_UNIT_CHOICES: Final = "|".join(f'"{unit}"' for unit in _USAGE_UNITS)
_INTEGER, _NUMBER, _UNIT = 0, 1, 2
# Upstream's legacy usage object (both its shapes); other keys are dropped, not refused.
_USAGE_FIELDS: Final = {
    "input": _INTEGER,
    "output": _INTEGER,
    "total": _INTEGER,
    "promptTokens": _INTEGER,
    "completionTokens": _INTEGER,
    "totalTokens": _INTEGER,
    "inputCost": _NUMBER,
    "outputCost": _NUMBER,
    "totalCost": _NUMBER,
    "unit": _UNIT,
}


def _usage(body: dict[str, Any], issues: list[Issue]) -> dict[str, Any] | None:
    """The legacy `usage` object, typed like upstream's schema (unlike usageDetails and
    costDetails, whose bad entries the usage rules drop later)."""
    value = body.get("usage")
    if value is None:
        return None
    if type(value) is not dict:
        issues.append(_type_issue(("body", "usage"), "object", value))
        return None
    for key, item in value.items():
        kind = _USAGE_FIELDS.get(key)
        if kind is None or item is None:
            continue
        item_type = type(item)
        if kind == _UNIT:
            if item_type is not str or item not in _USAGE_UNITS:
                issues.append(
                    Issue(
                        ("body", "usage", key),
                        f"Invalid option: expected one of {_USAGE_UNIT_CHOICES}",
                        "invalid_value",
                    )
                )
        elif item_type is int or (item_type is float and (kind == _NUMBER or item.is_integer())):
            continue
        elif item_type is float:
            issues.append(
                Issue(
                    ("body", "usage", key),
                    "Invalid input: expected int, received number",
                    "invalid_type",
                )
            )
        else:
            issues.append(_type_issue(("body", "usage", key), "number", item))
    return value


def _prompt_version(body: dict[str, Any], issues: list[Issue]) -> int | None:
    value = body.get("promptVersion")
    if value is None:
        return None
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    if kind is float:
        issues.append(
            Issue(
                ("body", "promptVersion"),
                "Invalid input: expected int, received number",
                "invalid_type",
            )
        )
    else:
        issues.append(_type_issue(("body", "promptVersion"), "number", value))
    return None


# --------------------------------------------------------------------------------------------
# Body parsers


def _parse_trace(
    event_id: str, ts: datetime, body: dict[str, Any], issues: list[Issue], internal: bool
) -> TraceEvent:
    name = _verbatim_string(body, "name", issues)
    if type(name) is str and len(name) > MAX_TRACE_NAME_LENGTH:
        issues.append(
            Issue(
                ("body", "name"),
                f"Too big: expected string to have <={MAX_TRACE_NAME_LENGTH} characters",
                "too_big",
            )
        )
    _string(body, "externalId", issues)
    tags = body.get("tags")
    if tags is not None and (type(tags) is not list or not all(type(t) is str for t in tags)):
        if type(tags) is not list:
            issues.append(_type_issue(("body", "tags"), "array", tags))
        else:
            issues.extend(
                _type_issue(("body", "tags", index), "string", tag)
                for index, tag in enumerate(tags)
                if type(tag) is not str
            )
        tags = None
    public = body.get("public")
    if public is not None and type(public) is not bool:
        issues.append(_type_issue(("body", "public"), "boolean", public))
        public = None
    return TraceEvent(
        event_id=event_id,
        timestamp=ts,
        id=_body_id(body, "id", issues, required=False),
        environment=_environment(body, issues, internal),
        body_timestamp=_datetime(body, "timestamp", issues),
        name=name,
        user_id=_verbatim_string(body, "userId", issues),
        session_id=_verbatim_string(body, "sessionId", issues),
        release=_verbatim_string(body, "release", issues),
        version=_verbatim_string(body, "version", issues),
        input=body.get("input"),
        output=body.get("output"),
        metadata=_metadata(body),
        tags=tags or None,
        public=public,
    )


@dataclass(slots=True, frozen=True)
class _ObservationSpec:
    type: ObservationType | None  # None: legacy, read from body.type
    is_update: bool
    has_end_time: bool
    has_generation_fields: bool
    legacy: bool


_OBSERVATION_SPECS: Final[dict[str, _ObservationSpec]] = {
    EventType.EVENT_CREATE: _ObservationSpec(ObservationType.EVENT, False, False, False, False),
    EventType.SPAN_CREATE: _ObservationSpec(ObservationType.SPAN, False, True, False, False),
    EventType.SPAN_UPDATE: _ObservationSpec(ObservationType.SPAN, True, True, False, False),
    EventType.GENERATION_CREATE: _ObservationSpec(
        ObservationType.GENERATION, False, True, True, False
    ),
    EventType.GENERATION_UPDATE: _ObservationSpec(
        ObservationType.GENERATION, True, True, True, False
    ),
    EventType.AGENT_CREATE: _ObservationSpec(ObservationType.AGENT, False, True, True, False),
    EventType.TOOL_CREATE: _ObservationSpec(ObservationType.TOOL, False, True, True, False),
    EventType.CHAIN_CREATE: _ObservationSpec(ObservationType.CHAIN, False, True, True, False),
    EventType.RETRIEVER_CREATE: _ObservationSpec(
        ObservationType.RETRIEVER, False, True, True, False
    ),
    EventType.EVALUATOR_CREATE: _ObservationSpec(
        ObservationType.EVALUATOR, False, True, True, False
    ),
    EventType.EMBEDDING_CREATE: _ObservationSpec(
        ObservationType.EMBEDDING, False, True, True, False
    ),
    EventType.GUARDRAIL_CREATE: _ObservationSpec(
        ObservationType.GUARDRAIL, False, True, True, False
    ),
    EventType.OBSERVATION_CREATE: _ObservationSpec(None, False, True, True, True),
    EventType.OBSERVATION_UPDATE: _ObservationSpec(None, True, True, True, True),
}

# SDK v1's observation events only know the three original types.
_LEGACY_OBSERVATION_TYPES: Final = {
    t.value: t for t in (ObservationType.GENERATION, ObservationType.SPAN, ObservationType.EVENT)
}
_LEGACY_TYPE_CHOICES: Final = "|".join(f'"{name}"' for name in _LEGACY_OBSERVATION_TYPES)


def _parse_observation(
    event_id: str,
    ts: datetime,
    event_type: str,
    spec: _ObservationSpec,
    body: dict[str, Any],
    issues: list[Issue],
    internal: bool,
) -> ObservationEvent:
    obs_type = spec.type
    if obs_type is None:
        raw_type = body.get("type")
        obs_type = _LEGACY_OBSERVATION_TYPES.get(raw_type) if type(raw_type) is str else None
        if obs_type is None:
            issues.append(
                Issue(
                    ("body", "type"),
                    f"Invalid option: expected one of {_LEGACY_TYPE_CHOICES}",
                    "invalid_value",
                )
            )
            obs_type = ObservationType.SPAN
    # Positional on purpose: keyword construction of this 27-field dataclass costs ~2 µs more
    # per event. The order is the field order of ObservationEvent.
    event = ObservationEvent(
        event_id,
        event_type,
        ts,
        # Legacy bodies may omit the id (accepted, never processed); the others require it.
        _body_id(body, "id", issues, required=not spec.legacy),
        obs_type,
        spec.is_update,
        _environment(body, issues, internal),
        _body_id(body, "traceId", issues, required=False),
        _verbatim_string(body, "name", issues),
        _datetime(body, "startTime", issues),
    )
    event.metadata = _metadata(body)
    event.input = body.get("input")
    event.output = body.get("output")
    event.level = _level(body, issues)
    event.status_message = _string(body, "statusMessage", issues)
    event.parent_observation_id = _string(body, "parentObservationId", issues)
    event.version = _string(body, "version", issues)
    if spec.has_end_time:
        event.end_time = _datetime(body, "endTime", issues)
    if spec.has_generation_fields:
        event.completion_start_time = _datetime(body, "completionStartTime", issues)
        event.model = _verbatim_string(body, "model", issues)
        event.model_parameters = _model_parameters(body, issues, spec.legacy)
        event.usage = _usage(body, issues)
        event.usage_details = _object(body, "usageDetails", issues)
        event.cost_details = _object(body, "costDetails", issues)
        if not spec.legacy:
            issue_count = len(issues)
            prompt_name = _string(body, "promptName", issues)
            prompt_version = _prompt_version(body, issues)
            # Upstream's refine uses truthiness on both sides and, like zod, only runs on
            # fields that are otherwise valid.
            if len(issues) == issue_count and bool(prompt_name) != bool(prompt_version):
                issues.append(
                    Issue(
                        ("body",),
                        "promptName and promptVersion must be provided together or not at all",
                    )
                )
            event.prompt_name = prompt_name or None
            event.prompt_version = prompt_version if prompt_name else None
    experiment = body.get("experiment")
    if type(experiment) is dict and experiment:
        event.experiment = experiment
    return event


_SCORE_DATA_TYPES: Final = {t.value: t for t in ScoreDataType}
_SCORE_SOURCES: Final = {s.value: s for s in ScoreSource}
_API_SCORE_SOURCES: Final = {
    ScoreSource.API.value: ScoreSource.API,
    ScoreSource.ANNOTATION.value: ScoreSource.ANNOTATION,
}


def _number(value: Any) -> float | None:
    """JSON number → finite float; else None. Booleans are refused like zod's `number()`
    does (the SDKs convert a Python bool to 1.0/0.0 before sending)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    return None


def _parse_score_fields(
    event_id: str,
    ts: datetime,
    body: dict[str, Any],
    issues: list[Issue],
    internal: bool,
    path: tuple[str, ...],
    api: bool,
) -> ScoreEvent:
    """Shared by `score-create` bodies and `POST /api/public/scores` items (`path` differs)."""

    def string(key: str) -> str | None:
        value = body.get(key)
        if value is None or type(value) is str:
            return value or None
        issues.append(_type_issue((*path, key), "string", value))
        return None

    score_id = body.get("id")
    if score_id is not None:
        issue = _id_issue((*path, "id"), score_id)
        if issue is not None:
            issues.append(issue)
            score_id = None

    name = body.get("name", UNSET)
    if type(name) is not str:
        issues.append(_type_issue((*path, "name"), "string", name))
        name = ""
    elif not name:
        issues.append(
            Issue((*path, "name"), "Too small: expected string to have >=1 characters", "too_small")
        )

    trace_id = string("traceId")
    session_id = string("sessionId")
    dataset_run_id = string("datasetRunId")
    observation_id = string("observationId")
    if not (
        (trace_id and not session_id and not dataset_run_id)
        or (session_id and not trace_id and not dataset_run_id and not observation_id)
        or (dataset_run_id and not trace_id and not session_id and not observation_id)
    ):
        issues.append(Issue((*path, "traceId"), SCORE_TARGET_MESSAGE))

    sources = _API_SCORE_SOURCES if api else _SCORE_SOURCES
    raw_source = body.get("source")
    source = ScoreSource.API
    if raw_source is not None:
        found = sources.get(raw_source) if type(raw_source) is str else None
        if found is None:
            choices = "|".join(f'"{s}"' for s in sources)
            issues.append(
                Issue(
                    (*path, "source"), f"Invalid option: expected one of {choices}", "invalid_value"
                )
            )
        else:
            source = found

    config_id = string("configId")
    raw_type = body.get("dataType")
    data_type: ScoreDataType | None = None
    if raw_type is not None:
        data_type = _SCORE_DATA_TYPES.get(raw_type) if type(raw_type) is str else None
        if data_type is None:
            choices = "|".join(f'"{t}"' for t in _SCORE_DATA_TYPES)
            issues.append(
                Issue(
                    (*path, "dataType"),
                    f"Invalid option: expected one of {choices}",
                    "invalid_value",
                )
            )

    value_path = (*path, "value")
    raw_value = body.get("value", UNSET)
    value: float | None = None
    string_value: str | None = None
    if raw_type is not None and data_type is None:
        pass  # already reported; the value cannot be judged without a type
    elif data_type is None:
        if type(raw_value) is str:
            data_type, string_value = ScoreDataType.CATEGORICAL, raw_value
        else:
            value = _number(raw_value)
            data_type = ScoreDataType.NUMERIC
            if value is None:
                issues.append(_type_issue(value_path, "number or string", raw_value))
    elif data_type is ScoreDataType.NUMERIC:
        value = _number(raw_value)
        if value is None:
            issues.append(_type_issue(value_path, "number", raw_value))
    elif data_type is ScoreDataType.BOOLEAN:
        value = _number(raw_value)
        if value is None:
            issues.append(_type_issue(value_path, "number", raw_value))
        elif value != 0.0 and value != 1.0:
            issues.append(
                Issue(
                    value_path,
                    "Value must be a number equal to either 0 or 1 for data type BOOLEAN",
                )
            )
        else:
            string_value = "True" if value == 1.0 else "False"
    elif type(raw_value) is not str:
        issues.append(_type_issue(value_path, "string", raw_value))
    else:
        string_value = raw_value
        if data_type is ScoreDataType.CATEGORICAL and config_id:
            # Set by the server when it validated the score against its config: the number
            # the chosen category maps to.
            value = _number(body.get("categoryValue"))
        if data_type is ScoreDataType.TEXT and not 1 <= len(raw_value) <= MAX_TEXT_SCORE_LENGTH:
            issues.append(
                Issue(
                    value_path,
                    f"Text score values must be between 1 and {MAX_TEXT_SCORE_LENGTH} characters",
                )
            )
        elif data_type is ScoreDataType.CORRECTION:
            if config_id:
                issues.append(
                    Issue((*path, "configId"), "Correction scores cannot reference a score config")
                )
            if session_id or dataset_run_id:
                issues.append(
                    Issue(value_path, "Correction scores can only target traces or observations")
                )
            name = CORRECTION_SCORE_NAME

    if api and source is ScoreSource.ANNOTATION and not config_id:
        if data_type is not ScoreDataType.CORRECTION:
            issues.append(
                Issue(
                    (*path, "configId"),
                    "configId is required when source is ANNOTATION unless dataType is CORRECTION",
                )
            )

    return ScoreEvent(
        event_id=event_id,
        timestamp=ts,
        id=score_id,
        name=name,
        data_type=data_type or ScoreDataType.NUMERIC,
        value=value,
        body_timestamp=parse_datetime(body.get("timestamp")),
        string_value=string_value,
        source=source,
        environment=_environment(body, issues, internal),
        trace_id=trace_id,
        observation_id=observation_id,
        session_id=session_id,
        dataset_run_id=dataset_run_id,
        comment=string("comment"),
        metadata=_metadata(body),
        config_id=config_id,
        queue_id=string("queueId"),
        execution_trace_id=string("executionTraceId"),
    )


# --------------------------------------------------------------------------------------------
# Public entry points

_EVENT_TYPE_CHOICES: Final = "|".join(f'"{t}"' for t in EventType)


def parse_event(raw: Any, *, internal: bool = False) -> ParsedEvent | EventError:
    """Validate and type one envelope. Never raises for bad input.

    `internal` is upstream's internal schema: `langfuse-*` environments are kept, not stripped.
    """
    if type(raw) is not dict:
        return EventError.invalid("unknown", [_type_issue((), "object", raw)])
    issues: list[Issue] = []
    event_id = raw.get("id")
    report_id = event_id if type(event_id) is str else "unknown"
    if event_id is None:
        issues.append(_type_issue(("id",), "string", raw.get("id", UNSET)))
    else:
        issue = _id_issue(("id",), event_id)
        if issue is not None:
            issues.append(issue)

    raw_ts = raw.get("timestamp", UNSET)
    ts = parse_datetime(raw_ts)
    if ts is None:
        if type(raw_ts) is str:
            issues.append(Issue(("timestamp",), "Invalid ISO datetime", "invalid_format"))
        else:
            issues.append(_type_issue(("timestamp",), "string", raw_ts))
        ts = _EPOCH

    event_type = raw.get("type")
    body = raw.get("body")
    if type(event_type) is not str or event_type not in _KNOWN_EVENT_TYPES:
        issues.append(
            Issue(
                ("type",),
                f"Invalid input: expected one of {_EVENT_TYPE_CHOICES}, received "
                + (json.dumps(event_type) if type(event_type) is str else js_type_name(event_type)),
                "invalid_union",
            )
        )
        return EventError.invalid(report_id, issues)
    if type(body) is not dict:
        issues.append(_type_issue(("body",), "object", raw.get("body", UNSET)))
        return EventError.invalid(report_id, issues)

    event: ParsedEvent
    spec = _OBSERVATION_SPECS.get(event_type)
    if spec is not None:
        event = _parse_observation(event_id, ts, event_type, spec, body, issues, internal)
    elif event_type == EventType.TRACE_CREATE:
        event = _parse_trace(event_id, ts, body, issues, internal)
    elif event_type == EventType.SCORE_CREATE:
        event = _parse_score_fields(event_id, ts, body, issues, internal, ("body",), api=False)
    else:
        if "log" not in body:
            issues.append(_type_issue(("body", "log"), "JSON value", UNSET))
        sdk_id = body.get("id")
        event = SdkLogEvent(event_id, ts, sdk_id if type(sdk_id) is str else None, body.get("log"))
    if issues:
        return EventError.invalid(report_id, issues)
    return event


_KNOWN_EVENT_TYPES: Final = frozenset(EventType)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def parse_batch(
    batch: Iterable[Any], *, internal: bool = False
) -> tuple[list[ParsedEvent], list[EventError]]:
    """Parse every envelope; valid events keep their input order."""
    events: list[ParsedEvent] = []
    errors: list[EventError] = []
    for raw in batch:
        result = parse_event(raw, internal=internal)
        if type(result) is EventError:
            errors.append(result)
        else:
            events.append(result)  # type: ignore[arg-type]
    return events, errors


def parse_score_request(
    body: Any,
    *,
    now: datetime,
    new_id: Callable[[], str],
    event_id: str | None = None,
    internal: bool = False,
) -> ScoreEvent:
    """One `POST /api/public/scores` body (CreateScoreRequest) → the event `score-create` gives.

    The id is generated through `new_id` when absent; `now` is the envelope time. The score's
    timestamp is the body's `timestamp` when the SDK sent a valid one (the call time).
    Raises `InvalidEvent` (an `InvalidInput`) listing every problem.
    """
    if type(body) is not dict:
        raise InvalidEvent([_type_issue((), "object", body)])
    issues: list[Issue] = []
    event = _parse_score_fields(event_id or "", now, body, issues, internal, (), api=not internal)
    metadata = body.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        # CreateScoreRequest types metadata as an object, unlike the ingestion body.
        issues.append(_type_issue(("metadata",), "object", metadata))
    if issues:
        raise InvalidEvent(issues)
    if event.id is None:
        event.id = new_id()
    if not event.event_id:
        event.event_id = event.id
    return event


def is_authorized(event: ParsedEvent, access_level: str) -> bool:
    """Upstream's per-event scope check: `sdk-log` always, scores for `scores` keys too."""
    kind = event.kind
    if kind is EntityKind.SDK_LOG:
        return True
    if kind is EntityKind.SCORE:
        return access_level == "project" or access_level == "scores"
    return access_level == "project"


def sort_events(events: Iterable[ParsedEvent]) -> list[ParsedEvent]:
    """Upstream's `sortBatch`: non-updates by envelope timestamp, then updates by timestamp."""
    others: list[ParsedEvent] = []
    updates: list[ParsedEvent] = []
    for event in events:
        (updates if event.is_update else others).append(event)
    others.sort(key=_by_timestamp)
    updates.sort(key=_by_timestamp)
    others.extend(updates)
    return others


def _by_timestamp(event: ParsedEvent) -> datetime:
    return event.timestamp


def group_key(event: ParsedEvent) -> tuple[EntityKind, str] | None:
    """(entity kind, body id), or None for events upstream never processes (no body id, sdk-log)."""
    if event.kind is EntityKind.SDK_LOG or not event.id:
        return None
    return event.kind, event.id


def group_events(
    events: Iterable[ParsedEvent],
) -> dict[tuple[EntityKind, str], list[ParsedEvent]]:
    """Group by (entity kind, body id), keeping order; feed it `sort_events` output.

    The first event's envelope id names the group's blob file upstream.
    """
    groups: dict[tuple[EntityKind, str], list[ParsedEvent]] = {}
    for event in events:
        if event.kind is EntityKind.SDK_LOG or not event.id:
            continue
        key = (event.kind, event.id)
        group = groups.get(key)
        if group is None:
            groups[key] = [event]
        else:
            group.append(event)
    return groups
