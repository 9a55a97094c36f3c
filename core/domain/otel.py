"""OpenTelemetry spans → Langfuse legacy ingestion events.

The OTLP endpoint decodes a trace export into the neutral `ResourceSpans` structure below
(plain dicts, ids as lowercase hex, times as int nanoseconds, attribute values as Python
values) and `spans_to_ingestion_events` turns it into the `{"id", "timestamp", "type", "body"}`
events of `POST /api/public/ingestion`, so both ingestion paths share one pipeline. The mapping
follows upstream's `OtelIngestionProcessor` (legacy path): observation type inference, trace
derivation (full / partial / shallow trace-create events), input/output extraction for the
common instrumentation libraries, metadata, usage, cost and model parameters.

Deliberate differences from upstream:
* metadata values are JSON-decoded (the v5 Python SDK JSON-encodes every value; older SDKs send
  strings raw, so only JSON objects/arrays are decoded for them);
* input/output strings that are valid JSON are decoded, so bodies look like the legacy API's;
* keys without a value are left out of bodies (never `null`), so a partial trace update can
  not erase fields set by another span;
* a span with `langfuse.internal.as_root` has no `parentObservationId`: its parent is a
  synthetic remote span the SDK never exports;
* observation bodies carry only the fields of their event type (span: no model/usage; event:
  no endTime), as the ingestion schemas would strip them anyway;
* span/generation bodies carry an `experiment` dict (snake_case keys) with the experiment
  attributes, for the experiments feature;
* every event of a call has the envelope timestamp `received_at`, and every trace body of a
  call the earliest span start of its trace (children are exported before their parents and
  the consumer keeps a trace's first timestamp);
* a partial trace update identical to the previous one of its trace in the same call (SDK 5
  copies the propagated trace attributes onto every span) is sent once;
* no "seen in the last 10 minutes" cache: a shallow trace is sent once per trace per call.

Events of one call share the `resourceAttributes` and `scope` metadata dicts (and a root's
`attributes` dict with its trace): treat event bodies as read-only, or copy before mutating.

This runs for every span, so the code favours dict lookups, precomputed tables and caches
(attribute-key classifications, per key-set plans) over clarity-by-abstraction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final, TypedDict

from fathom.core.domain.tracing import DEFAULT_ENVIRONMENT, LEVEL_ALIASES, Level

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# The neutral structure produced by the OTLP decoders


class SpanStatus(TypedDict):
    code: int  # 0 unset, 1 ok, 2 error
    message: str


class SpanEvent(TypedDict):
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


class Span(TypedDict):
    trace_id: str  # 32 lowercase hex characters
    span_id: str  # 16 lowercase hex characters
    parent_span_id: str | None
    name: str
    kind: int
    start_time_unix_nano: int  # 0 when absent
    end_time_unix_nano: int  # 0 when absent
    attributes: dict[str, Any]
    events: list[SpanEvent]
    status: SpanStatus


class InstrumentationScope(TypedDict):
    name: str
    version: str
    attributes: dict[str, Any]


class ScopeSpans(TypedDict):
    scope: InstrumentationScope
    spans: list[Span]


class ResourceSpans(TypedDict):
    resource_attributes: dict[str, Any]
    scope_spans: list[ScopeSpans]


# --------------------------------------------------------------------------------------------
# Attribute names

OBSERVATION_TYPE: Final = "langfuse.observation.type"
OBSERVATION_INPUT: Final = "langfuse.observation.input"
OBSERVATION_OUTPUT: Final = "langfuse.observation.output"
OBSERVATION_METADATA: Final = "langfuse.observation.metadata"
OBSERVATION_LEVEL: Final = "langfuse.observation.level"
OBSERVATION_STATUS_MESSAGE: Final = "langfuse.observation.status_message"
OBSERVATION_COMPLETION_START_TIME: Final = "langfuse.observation.completion_start_time"
OBSERVATION_MODEL: Final = "langfuse.observation.model.name"
OBSERVATION_MODEL_PARAMETERS: Final = "langfuse.observation.model.parameters"
OBSERVATION_USAGE_DETAILS: Final = "langfuse.observation.usage_details"
OBSERVATION_COST_DETAILS: Final = "langfuse.observation.cost_details"
OBSERVATION_PROMPT_NAME: Final = "langfuse.observation.prompt.name"
OBSERVATION_PROMPT_VERSION: Final = "langfuse.observation.prompt.version"
TRACE_NAME: Final = "langfuse.trace.name"
TRACE_INPUT: Final = "langfuse.trace.input"
TRACE_OUTPUT: Final = "langfuse.trace.output"
TRACE_METADATA: Final = "langfuse.trace.metadata"
TRACE_TAGS: Final = "langfuse.trace.tags"
TRACE_PUBLIC: Final = "langfuse.trace.public"
ENVIRONMENT: Final = "langfuse.environment"
RELEASE: Final = "langfuse.release"
VERSION: Final = "langfuse.version"
AS_ROOT: Final = "langfuse.internal.as_root"
COMPAT_METADATA: Final = "langfuse.metadata"
GENKIT_NAME: Final = "genkit:name"
GENKIT_SUBTYPE: Final = "genkit:metadata:subtype"

_ENVIRONMENT_KEYS: Final = (ENVIRONMENT, "deployment.environment.name", "deployment.environment")
_USER_ID_KEYS: Final = ("langfuse.user.id", "user.id")
_SESSION_ID_KEYS: Final = ("langfuse.session.id", "session.id", "gen_ai.conversation.id")
_TAG_KEYS: Final = (TRACE_TAGS, "langfuse.tags")
_MODEL_KEYS: Final = (
    OBSERVATION_MODEL,
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
    "llm.response.model",
    "llm.model_name",
    "model",
)
# The model keys upstream's type mapper treats as "this is a generation".
_TYPE_MODEL_KEYS: Final = (
    OBSERVATION_MODEL,
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "model",
)
_PYTHON_SDK_GENERATION_KEYS: Final = (
    OBSERVATION_MODEL,
    OBSERVATION_COST_DETAILS,
    OBSERVATION_USAGE_DETAILS,
    OBSERVATION_COMPLETION_START_TIME,
    OBSERVATION_MODEL_PARAMETERS,
    OBSERVATION_PROMPT_NAME,
    OBSERVATION_PROMPT_VERSION,
)

# --------------------------------------------------------------------------------------------
# Observation types

_GENERATION = "GENERATION"
_SPAN = "SPAN"
_EVENT = "EVENT"
_TOOL = "TOOL"
_EMBEDDING = "EMBEDDING"
_AGENT = "AGENT"

_LANGFUSE_TYPES: Final = {
    "span": _SPAN,
    "generation": _GENERATION,
    "event": _EVENT,
    "embedding": _EMBEDDING,
    "agent": "AGENT",
    "tool": _TOOL,
    "chain": "CHAIN",
    "retriever": "RETRIEVER",
    "guardrail": "GUARDRAIL",
    "evaluator": "EVALUATOR",
}
_OPENINFERENCE_KINDS: Final = {
    "CHAIN": "CHAIN",
    "RETRIEVER": "RETRIEVER",
    "LLM": _GENERATION,
    "EMBEDDING": _EMBEDDING,
    "AGENT": "AGENT",
    "TOOL": _TOOL,
    "GUARDRAIL": "GUARDRAIL",
    "EVALUATOR": "EVALUATOR",
}
_GEN_AI_OPERATIONS: Final = {
    "chat": _GENERATION,
    "completion": _GENERATION,
    "text_completion": _GENERATION,
    "generate_content": _GENERATION,
    "generate": _GENERATION,
    "embeddings": _EMBEDDING,
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
    "execute_tool": _TOOL,
}
_GENKIT_SUBTYPES: Final = {
    "model": _GENERATION,
    "background-model": _GENERATION,
    "embedder": _EMBEDDING,
    "tool": _TOOL,
    "tool.v2": _TOOL,
    "retriever": "RETRIEVER",
    "evaluator": "EVALUATOR",
}
_VERCEL_GENERATION_OPS: Final = (
    "ai.generateText.doGenerate",
    "ai.streamText.doStream",
    "ai.generateObject.doGenerate",
    "ai.streamObject.doStream",
)
_VERCEL_EMBEDDING_OPS: Final = ("ai.embedMany.doEmbed", "ai.embed.doEmbed")
_VERCEL_MODEL_KEYS: Final = (
    OBSERVATION_MODEL,
    "ai.model.id",
    "gen_ai.request.model",
    "gen_ai.response.model",
)

EVENT_TYPES: Final = {t: f"{t.lower()}-create" for t in _LANGFUSE_TYPES.values()}
# Types whose bodies carry model, usage, cost and completion start (generation bodies).
_GENERATION_LIKE: Final = frozenset(EVENT_TYPES) - {_SPAN, _EVENT}

# --------------------------------------------------------------------------------------------
# Levels

_LEVELS: Final[dict[str, str]] = {level.value: level.value for level in Level}
_LEVELS.update({alias: level.value for alias, level in LEVEL_ALIASES.items()})
_LIVEKIT_DEBUG_SPANS: Final = frozenset(
    {
        "user_speaking",
        "eou_detection",
        "llm_request_run",
        "tts_node",
        "tts_request",
        "tts_request_run",
        "tts_stream_adapter",
        "agent_speaking",
        "drain_agent_activity",
        "on_exit",
        "on_enter",
        "llm_fallback_adapter",
        "tts_fallback_adapter",
        "start_agent_activity",
    }
)

# --------------------------------------------------------------------------------------------
# Attribute-key classification
#
# Most keys need no per-key work beyond a direct lookup later; the families below are the
# prefixes that must be scanned. Each distinct key is classified once and cached, so the hot
# loop is one dict lookup per attribute.

_PLAIN = 0  # read (if at all) by direct lookup
_OBS_META = 1  # langfuse.observation.metadata.<k>
_TRACE_META = 2  # langfuse.trace.metadata.<k>
_COMPAT_META = 3  # langfuse.metadata.<k>, ai.telemetry.metadata.<k>: both domains
_TRACE_KEY = 4  # an exact key that makes a non-root span update its trace
_USAGE = 5  # gen_ai.usage.<k>, llm.token_count.<k> (suffix = canonical usage key)
_REQUEST_PARAM = 6  # gen_ai.request.<k> (not model)
_INVOCATION_PARAM = 7  # llm.invocation_parameters.<k>
_GEN_AI_PROMPT = 8  # gen_ai.prompt.<path>
_GEN_AI_COMPLETION = 9  # gen_ai.completion.<path>
_LLM_INPUT = 10  # llm.input_messages.<path>
_LLM_OUTPUT = 11  # llm.output_messages.<path>
_EXPERIMENT = 12  # langfuse.experiment.* exact keys (suffix = body key)
_EXPERIMENT_META = 13  # langfuse.experiment.metadata.<k>
_EXPERIMENT_ITEM_META = 14  # langfuse.experiment.item.metadata.<k>

# Attribute keys that hold input/output: never copied into metadata.attributes.
_IO_KEYS: Final = frozenset(
    {
        TRACE_INPUT,
        TRACE_OUTPUT,
        OBSERVATION_INPUT,
        OBSERVATION_OUTPUT,
        "genkit:input",
        "genkit:output",
        "ai.prompt.messages",
        "ai.prompt",
        "ai.toolCall.args",
        "ai.response.text",
        "ai.result.text",
        "ai.toolCall.result",
        "ai.response.object",
        "ai.result.object",
        "ai.response.toolCalls",
        "ai.result.toolCalls",
        "gcp.vertex.agent.llm_request",
        "gcp.vertex.agent.llm_response",
        "gcp.vertex.agent.tool_call_args",
        "gcp.vertex.agent.tool_response",
        "prompt",
        "all_messages_events",
        "events",
        "lk.input_text",
        "lk.user_transcript",
        "lk.chat_ctx",
        "lk.user_input",
        "lk.function_tool.output",
        "lk.response.text",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "input.value",
        "output.value",
        "final_result",
        "pydantic_ai.all_messages",
        "input",
        "output",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.prompt",
        "gen_ai.completion",
        "llm.input_messages",
        "llm.output_messages",
    }
)
_IO_PREFIXES: Final = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
)

_TRACE_UPDATE_KEYS: Final = frozenset(
    {
        TRACE_NAME,
        TRACE_INPUT,
        TRACE_OUTPUT,
        TRACE_METADATA,
        TRACE_TAGS,
        TRACE_PUBLIC,
        "langfuse.tags",
        "langfuse.public",
        "langfuse.user.id",
        "langfuse.session.id",
        "user.id",
        "session.id",
        "gen_ai.conversation.id",
        "ai.telemetry.metadata.userId",
        "ai.telemetry.metadata.sessionId",
        "ai.telemetry.metadata.tags",
        "tag.tags",
    }
)
# Metadata keys integrations use to carry trace fields (OpenAI / LangChain integrations).
_TRACE_FIELD_META_KEYS: Final = frozenset(
    {"langfuse_user_id", "langfuse_session_id", "langfuse_tags"}
)
# Vercel AI SDK keys that are trace fields or prompt links, not metadata.
_VERCEL_NON_METADATA: Final = frozenset(
    {
        "ai.telemetry.metadata.userId",
        "ai.telemetry.metadata.sessionId",
        "ai.telemetry.metadata.tags",
        "ai.telemetry.metadata.langfusePrompt",
    }
)

_EXPERIMENT_KEYS: Final = {
    "langfuse.experiment.id": "id",
    "langfuse.experiment.name": "name",
    "langfuse.experiment.description": "description",
    "langfuse.experiment.metadata": "metadata",
    "langfuse.experiment.dataset.id": "dataset_id",
    "langfuse.experiment.item.id": "item_id",
    "langfuse.experiment.item.version": "item_version",
    "langfuse.experiment.item.metadata": "item_metadata",
    "langfuse.experiment.item.expected_output": "item_expected_output",
    "langfuse.experiment.item.root_observation_id": "item_root_observation_id",
}
# Experiment values the SDK sends JSON-encoded (or as raw strings): decoded like input/output.
_EXPERIMENT_JSON: Final = frozenset({"metadata", "item_metadata", "item_expected_output"})

_USAGE_ALIASES: Final = {
    "prompt_tokens": "input",
    "input_tokens": "input",
    "prompt": "input",
    "input": "input",
    "completion_tokens": "output",
    "output_tokens": "output",
    "completion": "output",
    "output": "output",
    "total_tokens": "total",
    "total": "total",
    # cache reads
    "cache_read_input_tokens": "input_cached_tokens",
    "cache_read.input_tokens": "input_cached_tokens",
    "cache_read_tokens": "input_cached_tokens",
    "cached_tokens": "input_cached_tokens",
    "cached_input_tokens": "input_cached_tokens",
    "input_cached_tokens": "input_cached_tokens",
    "prompt_details.cache_read": "input_cached_tokens",
    "prompt_tokens_details.cached_tokens": "input_cached_tokens",
    "input_tokens_details.cached_tokens": "input_cached_tokens",
    # cache writes
    "cache_creation_input_tokens": "input_cache_creation",
    "cache_creation.input_tokens": "input_cache_creation",
    "cache_write_tokens": "input_cache_creation",
    "cache_write_input_tokens": "input_cache_creation",
    "prompt_details.cache_write": "input_cache_creation",
    "input_cache_creation": "input_cache_creation",
    # reasoning
    "reasoning_tokens": "output_reasoning_tokens",
    "reasoning.output_tokens": "output_reasoning_tokens",
    "completion_details.reasoning": "output_reasoning_tokens",
    "completion_tokens_details.reasoning_tokens": "output_reasoning_tokens",
    "output_tokens_details.reasoning_tokens": "output_reasoning_tokens",
    "output_reasoning_tokens": "output_reasoning_tokens",
    "thoughts_tokens": "output_reasoning_tokens",  # Gemini
    # audio
    "completion_details.audio": "output_audio_tokens",
    "completion_tokens_details.audio_tokens": "output_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "prompt_details.audio": "input_audio_tokens",
    "prompt_tokens_details.audio_tokens": "input_audio_tokens",
    "input_audio_tokens": "input_audio_tokens",
}
# Detail counts included in the provider's input/output totals: subtracted so the
# buckets add up (and are priced once).
_INPUT_DETAIL_KEYS: Final = ("input_cached_tokens", "input_cache_creation", "input_audio_tokens")
_OUTPUT_DETAIL_KEYS: Final = ("output_reasoning_tokens", "output_audio_tokens")

_PREFIX_FAMILIES: Final = (
    # Longest first where one prefix extends another.
    ("langfuse.observation.metadata.", _OBS_META),
    ("langfuse.trace.metadata.", _TRACE_META),
    ("langfuse.experiment.item.metadata.", _EXPERIMENT_ITEM_META),
    ("langfuse.experiment.metadata.", _EXPERIMENT_META),
    ("langfuse.metadata.", _COMPAT_META),
    ("ai.telemetry.metadata.", _COMPAT_META),
    ("gen_ai.usage.", _USAGE),
    ("llm.token_count.", _USAGE),
    ("gen_ai.request.", _REQUEST_PARAM),
    ("llm.invocation_parameters.", _INVOCATION_PARAM),
    ("gen_ai.prompt.", _GEN_AI_PROMPT),
    ("gen_ai.completion.", _GEN_AI_COMPLETION),
    ("llm.input_messages.", _LLM_INPUT),
    ("llm.output_messages.", _LLM_OUTPUT),
)
# Families whose keys are metadata or input/output: not repeated under metadata.attributes.
_HIDDEN_FAMILIES: Final = frozenset(
    {
        _OBS_META,
        _TRACE_META,
        _COMPAT_META,
        _GEN_AI_PROMPT,
        _GEN_AI_COMPLETION,
        _LLM_INPUT,
        _LLM_OUTPUT,
    }
)
_HIDDEN_EXACT: Final = _IO_KEYS | {OBSERVATION_METADATA, TRACE_METADATA, COMPAT_METADATA}

# Plain keys a partial trace body is built from (besides the trace-update keys).
_TRACE_BODY_KEYS: Final = frozenset({VERSION, RELEASE, COMPAT_METADATA, *_ENVIRONMENT_KEYS})

# (family, suffix, copied into metadata.attributes for foreign scopes,
#  read when building a partial trace body)
_KeyClass = tuple[int, str, bool, bool]
_KEY_CACHE: dict[str, _KeyClass] = {}
_KEY_CACHE_LIMIT: Final = 100_000


def _classify(key: str) -> _KeyClass:
    if key in _EXPERIMENT_KEYS:
        return (_EXPERIMENT, _EXPERIMENT_KEYS[key], True, False)
    if key in _TRACE_UPDATE_KEYS:
        return (_TRACE_KEY, "", key not in _HIDDEN_EXACT, True)
    if key in _HIDDEN_EXACT:
        return (_PLAIN, "", False, key in _TRACE_BODY_KEYS)
    for prefix, family in _PREFIX_FAMILIES:
        if key.startswith(prefix):
            suffix = key[len(prefix) :]
            if family == _USAGE:
                if key == "gen_ai.usage.cost":
                    break
                suffix = _USAGE_ALIASES.get(suffix, suffix)
            elif (family == _REQUEST_PARAM or family == _INVOCATION_PARAM) and suffix == "model":
                break
            elif family == _COMPAT_META and key in _VERCEL_NON_METADATA:
                break
            trace_body_input = (
                family == _TRACE_META
                or family == _COMPAT_META
                or (family == _OBS_META and suffix in _TRACE_FIELD_META_KEYS)
            )
            return (family, suffix, family not in _HIDDEN_FAMILIES, trace_body_input)
    return (_PLAIN, "", not key.startswith(_IO_PREFIXES), key in _TRACE_BODY_KEYS)


def _key_class(key: str) -> _KeyClass:
    cls = _classify(key)
    if len(_KEY_CACHE) < _KEY_CACHE_LIMIT:  # a client spraying keys must not grow memory
        _KEY_CACHE[key] = cls
    return cls


class _Shape:
    """What the mapping needs to know about one set of attribute keys.

    Spans of one instrumentation carry the same keys in the same order, so the plan is built
    once per key tuple and the per-span work touches only the keys that need it.
    """

    __slots__ = (
        "families",
        "trace_update_keys",
        "has_trace_metadata",
        "trace_body_keys",
        "visible",
        # Which optional key groups occur at all: absent groups cost nothing per span.
        "named",
        "foreign_io",
        "metadata_extras",
        "completion_start",
        "model",
        "parameters",
        "usage",
        "cost",
        "prompt",
        "flue_type",
    )

    def __init__(self, keys: tuple[str, ...]) -> None:
        families: list[tuple[str, int, str]] = []
        trace_update_keys: list[str] = []
        trace_body_keys: list[str] = []
        visible: list[str] = []
        self.has_trace_metadata = False
        for key in keys:
            family, suffix, is_visible, is_trace_body_input = _KEY_CACHE.get(key) or _key_class(key)
            if family == _TRACE_KEY:
                trace_update_keys.append(key)
            elif family:
                families.append((key, family, suffix))
                if family == _TRACE_META:
                    self.has_trace_metadata = True
                elif family == _OBS_META and suffix in _TRACE_FIELD_META_KEYS:
                    trace_update_keys.append(key)
            if is_trace_body_input:
                trace_body_keys.append(key)
            if is_visible:
                visible.append(key)
        self.families = tuple(families)
        self.trace_update_keys = tuple(trace_update_keys)
        self.trace_body_keys = tuple(trace_body_keys)
        self.visible = tuple(visible)
        present = frozenset(keys)
        family_set = {family for _, family, _ in families}
        self.named = not present.isdisjoint(_NAME_KEYS)
        self.foreign_io = not present.isdisjoint(_FOREIGN_IO_KEYS) or not family_set.isdisjoint(
            _FLATTENED_IO_FAMILIES
        )
        self.metadata_extras = not present.isdisjoint(_METADATA_EXTRA_KEYS)
        self.completion_start = not present.isdisjoint(_COMPLETION_START_KEYS)
        self.model = not present.isdisjoint(_MODEL_KEYS) or GENKIT_NAME in present
        # Flue marks its spans with key families, not a type attribute: one scan per shape.
        self.flue_type: str | None = None
        if any(key.startswith("flue.") for key in keys):
            if any(key.startswith("flue.tool.") for key in keys):
                self.flue_type = _TOOL
            elif any(key.startswith("flue.task.") for key in keys):
                self.flue_type = _AGENT
        self.parameters = not present.isdisjoint(_PARAMETER_KEYS) or not family_set.isdisjoint(
            (_REQUEST_PARAM, _INVOCATION_PARAM)
        )
        self.usage = (
            OBSERVATION_USAGE_DETAILS in present or _USAGE in family_set or _ADK_RESPONSE in present
        )
        self.cost = not present.isdisjoint(_COST_KEYS)
        self.prompt = not present.isdisjoint(_PROMPT_KEYS)


_NAME_KEYS: Final = frozenset(
    {"gen_ai.tool.name", GENKIT_NAME, "logfire.msg", "ai.toolCall.name", "ai.operationId"}
)
_FOREIGN_IO_KEYS: Final = (_IO_KEYS | {"tool_arguments", "tool_response"}) - {
    OBSERVATION_INPUT,
    OBSERVATION_OUTPUT,
    TRACE_INPUT,
    TRACE_OUTPUT,
}
_FLATTENED_IO_FAMILIES: Final = frozenset(
    {_GEN_AI_PROMPT, _GEN_AI_COMPLETION, _LLM_INPUT, _LLM_OUTPUT}
)
_METADATA_EXTRA_KEYS: Final = frozenset({OBSERVATION_METADATA, COMPAT_METADATA, "ai.prompt.tools"})
_COMPLETION_START_KEYS: Final = frozenset(
    {OBSERVATION_COMPLETION_START_TIME, "ai.response.msToFirstChunk", "ai.stream.msToFirstChunk"}
)
_PARAMETER_KEYS: Final = frozenset(
    {OBSERVATION_MODEL_PARAMETERS, "llm.invocation_parameters", "model_config"}
)
_COST_KEYS: Final = frozenset({OBSERVATION_COST_DETAILS, "gen_ai.usage.cost", "llm.cost.total"})
_PROMPT_KEYS: Final = frozenset(
    {
        OBSERVATION_PROMPT_NAME,
        OBSERVATION_PROMPT_VERSION,
        "langfuse.prompt.name",
        "ai.telemetry.metadata.langfusePrompt",
    }
)


_SHAPES: dict[tuple[str, ...], _Shape] = {}
_SHAPE_CACHE_LIMIT: Final = 20_000


def _shape(keys: tuple[str, ...]) -> _Shape:
    shape = _Shape(keys)
    if len(_SHAPES) >= _SHAPE_CACHE_LIMIT:  # bounded: exotic clients must not grow memory
        _SHAPES.clear()
    _SHAPES[keys] = shape
    return shape


# --------------------------------------------------------------------------------------------
# JSON helpers

_scan_once = json.JSONDecoder().scan_once
_JSON_WHITESPACE: Final = " \t\n\r"
_JSON_STARTS: Final = frozenset('{["-0123456789')
_JSON_LITERALS: Final = {"true": True, "false": False, "null": None}
_compact_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _json_loads(text: str) -> Any:
    """`json.loads` without its Python-level overhead (this runs several times per span)."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        raise ValueError("trailing data")
    return value


def _decode_json(value: Any) -> Any:
    """A string holding JSON → its value; anything else (or non-JSON text) unchanged."""
    if type(value) is not str or not value:
        return value
    first = value[0]
    if first in _JSON_STARTS:
        try:
            return _json_loads(value)
        except ValueError:
            return value
    if first == '"':
        if len(value) > 1 and value[-1] == '"' and "\\" not in value and '"' not in value[1:-1]:
            return value[1:-1]
        try:
            return _json_loads(value)
        except ValueError:
            return value
    if first in _JSON_WHITESPACE:
        stripped = value.strip(_JSON_WHITESPACE)
        return _decode_json(stripped) if stripped and stripped != value else value
    literal = _JSON_LITERALS.get(value, value)
    return literal


def _decode_structured(value: Any) -> Any:
    """Decode a string only when it holds a JSON object or array (raw strings stay strings)."""
    if type(value) is str and value and value[0] in "{[":
        try:
            decoded = _json_loads(value)
        except ValueError:
            return value
        if type(decoded) is dict or type(decoded) is list:
            return decoded
    return value


def _is_digits(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts characters such as "²" that int() rejects.
    return text.isascii() and text.isdigit()


def _to_string(value: Any) -> str:
    return value if type(value) is str else _compact_dumps(value)


def _decoded_as(value: Any, kind: type) -> Any:
    """A `kind` (dict or list) attribute, given as JSON text or as the value itself; None
    when it is anything else or not JSON."""
    if type(value) is str:
        try:
            value = _json_loads(value)
        except ValueError:
            return None
    return value if type(value) is kind else None


def _decode_object(value: Any) -> dict[str, Any] | None:
    """A JSON object attribute (string or kvlist) → dict; anything else → None."""
    decoded: dict[str, Any] | None = _decoded_as(value, dict)
    return decoded


def _metadata_decoder(json_encoded_values: bool) -> Callable[[Any], Any]:
    return _decode_json if json_encoded_values else _decode_structured


def _sdk_major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.lstrip("v").split(".", 1)[0]
    return int(head) if _is_digits(head) else None


# --------------------------------------------------------------------------------------------
# Times

_SECOND_PREFIXES: dict[int, str] = {}


def nanos_to_iso(nanos: int) -> str:
    """Unix nanoseconds → `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, truncated)."""
    seconds, micros = divmod(nanos // 1000, 1_000_000)
    prefix = _SECOND_PREFIXES.get(seconds)
    if prefix is None:
        # Spans of one export share a handful of seconds: format each second once.
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        if len(_SECOND_PREFIXES) >= 4096:
            _SECOND_PREFIXES.clear()
        _SECOND_PREFIXES[seconds] = prefix
    return f"{prefix}.{micros:06d}Z"


def datetime_to_iso(value: datetime) -> str:
    """Aware or naive (taken as UTC) datetime → ISO string with `Z` and microseconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# 9999-12-31T23:59:59Z: later times would not survive an ISO round trip.
_MAX_NANOS: Final = 253_402_300_799_999_999_999


def _safe_nanos_to_iso(nanos: int) -> str | None:
    if nanos <= 0 or nanos > _MAX_NANOS:
        return None
    try:
        return nanos_to_iso(nanos)
    except (OverflowError, OSError, ValueError):
        return None


def _iso_or_none(value: Any) -> str | None:
    """An ISO date string (possibly JSON-encoded once more) → normalised UTC ISO; else None."""
    if type(value) is not str or len(value) < 10:
        return None
    if value[0] == '"':
        value = _decode_json(value)
        if type(value) is not str:
            return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) == 27 and value[26] == "Z" and value[19] == ".":
        return value  # already canonical (what the SDKs send): skip re-formatting
    return datetime_to_iso(parsed)


# --------------------------------------------------------------------------------------------
# Small extractors


def _first_truthy(attrs: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value:
            return value
    return None


def _string_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else _compact_dumps(value)


def _tags(value: Any) -> list[str]:
    """Tags arrive as an array, a JSON array string, a comma list or one string."""
    if not value:
        return []
    if type(value) is list:
        return [tag if type(tag) is str else _compact_dumps(tag) for tag in value]
    if type(value) is str:
        if value.lstrip().startswith("["):
            try:
                parsed = _json_loads(value.strip())
            except ValueError:
                parsed = None
            if type(parsed) is list:
                return [tag if type(tag) is str else _compact_dumps(tag) for tag in parsed]
        if "," in value:
            return [tag.strip() for tag in value.split(",")]
        return [value]
    return [_compact_dumps(value)]


def _public(attrs: dict[str, Any]) -> bool | None:
    value = attrs.get(TRACE_PUBLIC)
    if value is None:
        value = attrs.get("langfuse.public")
        if value is None:
            return None
    return value is True or value == "true"


def _number(value: Any) -> int | float | None:
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is str:
        try:
            parsed = float(value)
        except ValueError:
            return None
        if parsed != parsed or parsed in (float("inf"), float("-inf")):
            return None
        return int(parsed) if parsed.is_integer() else parsed
    return None


def _sanitize_model_parameters(params: dict[str, Any]) -> dict[str, Any]:
    # Upstream keeps strings and numbers and JSON-stringifies everything else.
    return {
        key: value
        if (type(value) is str or type(value) is int or type(value) is float)
        else _compact_dumps(value)
        for key, value in params.items()
    }


def _prompt_version(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    if kind is str and _is_digits(value.strip()):
        return int(value)
    return None


def _unflatten(pairs: list[tuple[str, Any]]) -> Any:
    """`[("0.role", "user"), ("0.content", "hi")]` → `[{"role": "user", "content": "hi"}]`.

    Upstream drops an attribute whose path would index past 10 000, and leaves the slots no
    attribute fills empty (`null`), as JavaScript arrays do.
    """
    root: dict[str, Any] = {}
    for path, value in pairs:
        parts = path.split(".")
        if any(_is_digits(part) and int(part) > _MAX_ARRAY_INDEX for part in parts):
            continue
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if type(child) is not dict:
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return _listify(root) if root else None


_MAX_ARRAY_INDEX: Final = 10_000


def _listify(node: Any) -> Any:
    if type(node) is not dict:
        return node
    if node and all(_is_digits(key) for key in node):
        slots = {int(key): value for key, value in node.items()}
        return [_listify(slots.get(index)) for index in range(max(slots) + 1)]
    return {key: _listify(value) for key, value in node.items()}


# --------------------------------------------------------------------------------------------
# Input / output


def _events_io(events: list[SpanEvent]) -> tuple[Any, Any] | None:
    """GenAI span events: semconv ≥1.37 operation details, ≤1.36 message events, Semantic Kernel."""
    for event in events:
        if event["name"] == "gen_ai.client.inference.operation.details":
            found = _messages_io(event["attributes"])
            if found is not None:
                return found
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for event in events:
        name = event["name"]
        if name.startswith("gen_ai.") and name.endswith(".message"):
            role = name[7:-8]
            if role in ("system", "user", "assistant", "tool"):
                inputs.append({"role": role, **event["attributes"]})
        elif name == "gen_ai.choice":
            outputs.append(dict(event["attributes"]))
    if inputs or outputs:
        output: Any = outputs[0] if len(outputs) == 1 else (outputs or None)
        return (inputs or None), output
    prompt = next((e["attributes"] for e in events if e["name"] == "gen_ai.content.prompt"), None)
    completion = next(
        (e["attributes"] for e in events if e["name"] == "gen_ai.content.completion"), None
    )
    if prompt is not None or completion is not None:
        prompt = prompt or {}
        completion = completion or {}
        return (
            prompt.get("gen_ai.prompt") or dict(prompt),
            completion.get("gen_ai.completion") or dict(completion),
        )
    return None


def _messages_io(attrs: dict[str, Any]) -> tuple[Any, Any] | None:
    """OpenTelemetry GenAI `gen_ai.input.messages` / `gen_ai.output.messages`."""
    input_messages = attrs.get("gen_ai.input.messages")
    output_messages = attrs.get("gen_ai.output.messages")
    if not input_messages and not output_messages:
        return None
    input_value = _with_system_instructions(
        _decode_json(input_messages), attrs.get("gen_ai.system_instructions")
    )
    return input_value, output_messages


def _with_system_instructions(input_value: Any, instructions: Any) -> Any:
    """Prepend `gen_ai.system_instructions` to a message list that has no system message yet."""
    if not instructions or not (type(input_value) is list or input_value is None):
        return input_value
    messages = input_value or []
    if any(type(message) is dict and message.get("role") == "system" for message in messages):
        return input_value
    system = _system_messages(instructions)
    return [*system, *messages] if system else input_value


def _system_messages(raw: Any) -> list[dict[str, Any]]:
    """The system messages upstream makes of `gen_ai.system_instructions`.

    Complete messages (`{role?, parts}`, LiteLLM) are kept one by one; anything else is text
    (`{type: "text", content}` parts, pydantic-ai), joined into one `{role, content}` message.
    Text that is not JSON is the content itself; values without text add nothing.
    """
    value = raw
    if type(raw) is str:
        try:
            value = _json_loads(raw)
        except ValueError:
            return [{"role": "system", "content": raw}]
    if type(value) is str:
        return [{"role": "system", "content": value}] if value else []
    if type(value) is dict:
        value = [value]
    if type(value) is not list or not value:
        return []
    if all(type(item) is dict and type(item.get("parts")) is list for item in value):
        return [{**item, "role": item.get("role") or "system"} for item in value]
    texts: list[str] = []
    for item in value:
        if type(item) is str:
            texts.append(item)
        elif type(item) is dict:
            content = item.get("content")
            if type(content) is str:
                texts.append(content)
            parts = item.get("parts")
            if type(parts) is list:
                texts.extend(
                    part["content"]
                    for part in parts
                    if type(part) is dict and type(part.get("content")) is str
                )
    return [{"role": "system", "content": "\n".join(texts)}] if texts else []


def _vercel_io(attrs: dict[str, Any]) -> tuple[Any, Any] | None:
    """Vercel AI SDK (scope `ai`): prompt or tool arguments in, text/object/tool calls out."""
    if "ai.prompt.messages" in attrs:
        input_value = attrs["ai.prompt.messages"]
    elif "ai.prompt" in attrs:
        input_value = attrs["ai.prompt"]
    else:
        input_value = attrs.get("ai.toolCall.args")
    output_value: Any = None
    if "ai.response.text" in attrs and "ai.response.toolCalls" in attrs:
        # Upstream serialises this message as is: the tool calls stay the SDK's JSON text.
        output_value = {
            "role": "assistant",
            "content": attrs["ai.response.text"],
            "tool_calls": attrs["ai.response.toolCalls"],
        }
    elif attrs.get("ai.response.text"):
        output_value = attrs["ai.response.text"]
    else:
        for key in _VERCEL_OUTPUT_KEYS:
            if key in attrs:
                output_value = attrs[key]
                break
    if input_value is None and output_value is None:
        return None
    return input_value, output_value


_VERCEL_AGENT_OPERATIONS: Final = ("invoke_agent", "agent_step")
_ADK_RESPONSE: Final = "gcp.vertex.agent.llm_response"

_VERCEL_OUTPUT_KEYS: Final = (
    "ai.result.text",  # AI SDK < 4
    "ai.toolCall.result",
    "ai.response.object",
    "ai.result.object",
    "ai.response.toolCalls",
    "ai.result.toolCalls",
)


def _logfire_events_io(value: Any) -> tuple[Any, Any] | None:
    """Logfire's `events` attribute: one JSON array of GenAI events, the choice is the output."""
    value = _decoded_as(value, list)
    if value is None:
        return None
    choice: Any = None
    inputs: list[Any] = []
    for event in value:
        if type(event) is dict and event.get("event.name") == "gen_ai.choice":
            if choice is None:
                choice = event
        else:
            inputs.append(event)
    if choice is None and not inputs:
        return None
    return (inputs or None), choice


def _foreign_io(
    attrs: dict[str, Any],
    events: list[SpanEvent],
    scope_name: str,
    flattened: dict[int, list[tuple[str, Any]]] | None,
) -> tuple[Any, Any]:
    """Input/output of spans from other instrumentations, in upstream's order of precedence."""
    get = attrs.get
    input_value = get("genkit:input")
    output_value = get("genkit:output")
    if input_value or output_value:
        return input_value, output_value
    if scope_name == "ai":
        found = _vercel_io(attrs)
        if found is not None:
            return found
    if events:
        found = _events_io(events)
        if found is not None:
            return found
    input_value = get("gcp.vertex.agent.llm_request")
    output_value = get("gcp.vertex.agent.llm_response")
    if not input_value or input_value == "{}":
        input_value = get("gcp.vertex.agent.tool_call_args")
    if not output_value or output_value == "{}":
        output_value = get("gcp.vertex.agent.tool_response")
    if input_value or output_value:
        return input_value, output_value
    input_value = get("prompt")  # Logfire
    output_value = get("all_messages_events")
    if input_value or output_value:
        return input_value, output_value
    logfire_events = get("events")
    if logfire_events is not None:
        found = _logfire_events_io(logfire_events)
        if found is not None:
            return found
    input_value = get("lk.input_text")  # LiveKit
    if input_value is None:
        input_value = get("lk.user_transcript")
        if input_value is None:
            input_value = get("lk.chat_ctx")
    output_value = get("lk.function_tool.output") or get("lk.response.text")
    if input_value or output_value:
        return input_value, output_value
    for input_key, output_key in (
        ("mlflow.spanInputs", "mlflow.spanOutputs"),
        ("traceloop.entity.input", "traceloop.entity.output"),
        ("input.value", "output.value"),  # OpenInference / SmolAgents
        ("input", "output"),  # Pydantic, Pipecat
    ):
        input_value = get(input_key)
        output_value = get(output_key)
        if input_value or output_value:
            return input_value, output_value
    if scope_name == "pydantic-ai":
        input_value = get("pydantic_ai.all_messages")
        output_value = get("final_result")
        if input_value or output_value:
            instructions = get("gen_ai.system_instructions")
            if instructions:
                input_value = _with_system_instructions(_decode_json(input_value), instructions)
            return input_value, output_value
    input_value = get("tool_arguments")
    output_value = get("tool_response")
    if input_value or output_value:
        return input_value, output_value
    for input_key, output_key, input_family, output_family in (
        ("gen_ai.prompt", "gen_ai.completion", _GEN_AI_PROMPT, _GEN_AI_COMPLETION),  # OpenLLMetry
        ("llm.input_messages", "llm.output_messages", _LLM_INPUT, _LLM_OUTPUT),  # OpenInference
    ):
        # A whole-value attribute wins over its flattened keys, as upstream's rebuild does.
        input_pairs = flattened.get(input_family) if flattened else None
        output_pairs = flattened.get(output_family) if flattened else None
        input_value = get(input_key)
        output_value = get(output_key)
        if input_pairs or output_pairs or input_value or output_value:
            return (
                input_value or (_unflatten(input_pairs) if input_pairs else None),
                output_value or (_unflatten(output_pairs) if output_pairs else None),
            )
    found = _messages_io(attrs)
    if found is not None:
        return found
    input_value = get("gen_ai.tool.call.arguments")
    output_value = get("gen_ai.tool.call.result")
    if input_value or output_value:
        return input_value, output_value
    return None, None


# --------------------------------------------------------------------------------------------
# Observation type


def _infer_type(
    attrs: dict[str, Any], scope: _ScopeContext, span_name: str, shape: _Shape
) -> str:  # upstream ObservationTypeMapper: the first mapper with an answer wins
    get = attrs.get
    declared = get(OBSERVATION_TYPE)
    if declared:
        if (
            scope.is_old_python_sdk
            and declared == "span"
            and any(key in attrs for key in _PYTHON_SDK_GENERATION_KEYS)
        ):
            # Python SDK ≤ 3.3 sent generations as "span".
            return _GENERATION
        # Upstream matches the exact lowercase names; anything else is left to the others.
        mapped = _LANGFUSE_TYPES.get(declared) if type(declared) is str else None
        if mapped:
            return mapped
    kind = get("openinference.span.kind")
    if kind and type(kind) is str:
        mapped = _OPENINFERENCE_KINDS.get(kind)
        if mapped:
            return mapped
    operation = get("gen_ai.operation.name")
    if operation and type(operation) is str:
        mapped = _GEN_AI_OPERATIONS.get(operation)
        if mapped:
            return mapped
    subtype = get(GENKIT_SUBTYPE)
    if subtype and type(subtype) is str:
        mapped = _GENKIT_SUBTYPES.get(subtype)
        if mapped:
            return mapped
    vercel_operation = get("operation.name")
    vercel_id = get("ai.operationId")
    if vercel_operation or vercel_id:
        mapped = _vercel_type(attrs, vercel_operation, vercel_id)
        if mapped:
            return mapped
    if get("gen_ai.tool.name") or get("gen_ai.tool.call.id"):
        return _TOOL
    if shape.flue_type is not None:
        return shape.flue_type
    if scope.name == "livekit-agents":
        mapped = _LIVEKIT_TYPES.get(span_name)
        if mapped:
            return mapped
    for key in _TYPE_MODEL_KEYS:
        if get(key):
            return _GENERATION
    return _SPAN


_LIVEKIT_TYPES: Final = {
    "agent_turn": _AGENT,
    "start_agent_activity": _AGENT,
    "function_tool": _TOOL,
}


def _vercel_type(attrs: dict[str, Any], operation: Any, operation_id: Any) -> str | None:
    def matches(prefixes: tuple[str, ...]) -> bool:
        return (type(operation) is str and operation.startswith(prefixes)) or (
            operation_id in prefixes
        )

    if any(attrs.get(key) for key in _VERCEL_MODEL_KEYS):
        if matches(_VERCEL_GENERATION_OPS):
            return _GENERATION
        if matches(_VERCEL_EMBEDDING_OPS):
            return _EMBEDDING
    if matches(("ai.toolCall",)):
        return _TOOL
    return None


def _observation_name(span_name: str, attrs: dict[str, Any]) -> str:
    get = attrs.get
    tool_name = get("gen_ai.tool.name")
    if tool_name:
        return _to_string(tool_name)
    genkit_name = get(GENKIT_NAME)
    if genkit_name:
        return _to_string(genkit_name)
    message = get("logfire.msg")
    if message:
        return _to_string(message)
    if "ai.toolCall.name" in attrs:
        return _to_string(attrs["ai.toolCall.name"])
    if "ai.operationId" in attrs:
        function_id = get("ai.telemetry.functionId")
        prefix = f"{function_id}:" if function_id else ""
        return f"{prefix}{attrs['ai.operationId']}"
    return span_name


# --------------------------------------------------------------------------------------------
# The mapping


class _ResourceContext:
    """What every span of one resource shares, computed once."""

    __slots__ = ("attributes", "trace_metadata", "release", "service_version")

    def __init__(self, attributes: dict[str, Any], decode_metadata: Callable[[Any], Any]) -> None:
        self.attributes = attributes
        self.trace_metadata = _domain_metadata(attributes, TRACE_METADATA, decode_metadata)
        self.release = attributes.get(RELEASE) or None
        self.service_version = attributes.get("service.version") or None


def _domain_metadata(
    attrs: dict[str, Any], prefix: str, decode_metadata: Callable[[Any], Any]
) -> dict[str, Any]:
    """Upstream's extractMetadata for attributes not on the hot path (resource attributes)."""
    result: dict[str, Any] = {}
    top = attrs.get(prefix) or attrs.get(COMPAT_METADATA)
    if top:
        result.update(_top_level_metadata(top, decode_metadata))
    dotted = prefix + "."
    for key, value in attrs.items():
        if key.startswith(dotted):
            result[key[len(dotted) :]] = decode_metadata(value)
        elif key.startswith(("langfuse.metadata.", "ai.telemetry.metadata.")):
            if key not in _VERCEL_NON_METADATA:
                result[key.split(".metadata.", 1)[1]] = _decode_structured(value)
    return result


def _top_level_metadata(value: Any, decode_metadata: Callable[[Any], Any]) -> dict[str, Any]:
    decoded = decode_metadata(value)
    # Upstream drops a whole-metadata attribute that is not a JSON object (and counts it).
    return decoded if type(decoded) is dict else _EMPTY


def _environment(attrs: dict[str, Any], resource_attrs: dict[str, Any]) -> str:
    for key in _ENVIRONMENT_KEYS:
        value = attrs.get(key) or resource_attrs.get(key)
        if value:
            return value if type(value) is str else _compact_dumps(value)
    return DEFAULT_ENVIRONMENT


def _usage_from_attributes(pairs: list[tuple[str, Any]]) -> dict[str, int | float] | None:
    usage: dict[str, int | float] = {}
    for key, raw in pairs:
        value = _number(raw)
        if value is not None and value >= 0:
            usage[key] = value
    if not usage:
        return None
    if "input" in usage:
        usage["input"] = max(usage["input"] - sum(usage.get(k, 0) for k in _INPUT_DETAIL_KEYS), 0)
    if "output" in usage:
        usage["output"] = max(
            usage["output"] - sum(usage.get(k, 0) for k in _OUTPUT_DETAIL_KEYS), 0
        )
    return usage


def _vercel_usage(attrs: dict[str, Any]) -> dict[str, int | float]:
    """Usage of a Vercel AI SDK span (scope `ai`), as upstream reads it.

    Input and output are always present (0 when the span reports none), cache and reasoning
    counts come from `ai.usage.*`, the GenAI cache attributes and the provider metadata
    (OpenAI, Anthropic with its 5-minute/1-hour cache writes, Bedrock), and are taken out of
    input and output so every bucket is priced once.
    """
    get = attrs.get
    usage: dict[str, int | float] = {}
    for name, keys in (
        ("input", ("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens")),
        ("output", ("gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens")),
        ("total", ("ai.usage.tokens",)),
    ):
        for key in keys:
            if key in attrs:
                value = _js_parse_int(attrs[key])
                if value is not None:
                    usage[name] = value
                break
    for name, key in (
        ("input_cached_tokens", "ai.usage.cachedInputTokens"),
        ("output_reasoning_tokens", "ai.usage.reasoningTokens"),
        ("input_cached_tokens", "gen_ai.usage.cache_read.input_tokens"),
        ("input_cache_creation", "gen_ai.usage.cache_creation.input_tokens"),
    ):
        if name not in usage:
            value = _number(get(key))
            if value is not None:
                usage[name] = value
    metadata = _provider_metadata(attrs)
    if metadata:
        _provider_usage(metadata, usage)
    usage["input"] = max(
        usage.get("input", 0) - sum(usage.get(key, 0) for key in _VERCEL_INPUT_DETAIL_KEYS),
        0,
    )
    usage["output"] = max(usage.get("output", 0) - usage.get("output_reasoning_tokens", 0), 0)
    return usage


_VERCEL_INPUT_DETAIL_KEYS: Final = (
    "input_cached_tokens",
    "input_cache_creation",
    "input_cache_creation_5m",
    "input_cache_creation_1h",
    "input_cache_read",
)


def _provider_usage(metadata: dict[str, Any], usage: dict[str, int | float]) -> None:
    """Token details from `ai.response.providerMetadata`; counts already known win."""

    def take(name: str, value: Any) -> None:
        if name not in usage:
            number = _number(value)
            if number is not None:
                usage[name] = number

    openai = metadata.get("openai")
    if type(openai) is dict:
        take("input_cached_tokens", openai.get("cachedPromptTokens"))
        take("accepted_prediction_tokens", openai.get("acceptedPredictionTokens"))
        take("rejected_prediction_tokens", openai.get("rejectedPredictionTokens"))
        take("output_reasoning_tokens", openai.get("reasoningTokens"))
    anthropic = metadata.get("anthropic")
    anthropic_usage = anthropic.get("usage") if type(anthropic) is dict else None
    if type(anthropic_usage) is dict:
        take("input_cache_creation", anthropic_usage.get("cache_creation_input_tokens"))
        take("input_cached_tokens", anthropic_usage.get("cache_read_input_tokens"))
        by_ttl = anthropic_usage.get("cache_creation")
        if type(by_ttl) is dict:
            five = _number(by_ttl.get("ephemeral_5m_input_tokens"))
            hour = _number(by_ttl.get("ephemeral_1h_input_tokens"))
            written = usage.get("input_cache_creation", 0)
            # Split the cache writes by lifetime only when the split fits in their total.
            if (five is not None or hour is not None) and (five or 0) + (hour or 0) <= written:
                if five is not None:
                    usage["input_cache_creation_5m"] = five
                if hour is not None:
                    usage["input_cache_creation_1h"] = hour
                usage["input_cache_creation"] = written - (five or 0) - (hour or 0)
    bedrock = metadata.get("bedrock")
    bedrock_usage = bedrock.get("usage") if type(bedrock) is dict else None
    if type(bedrock_usage) is dict:
        take("input_cache_read", bedrock_usage.get("cacheReadInputTokens"))
        take("input_cache_write", bedrock_usage.get("cacheWriteInputTokens"))
        take("input_cache_creation", bedrock_usage.get("cacheCreationInputTokens"))


def _js_parse_int(value: Any) -> int | None:
    """JavaScript's `parseInt(String(value))`: leading integer digits, else None (NaN)."""
    if type(value) is int:
        return value
    text = _js_to_string(value).strip()
    end = 1 if text[:1] in ("-", "+") else 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    digits = text[:end]
    return int(digits) if digits.lstrip("+-") else None


def _google_adk_usage(value: Any, usage: dict[str, int | float] | None) -> dict[str, Any] | None:
    """Cached and thinking tokens from Google ADK's `gcp.vertex.agent.llm_response`."""
    response = _decode_object(value)
    metadata = response.get("usage_metadata") if response else None
    if type(metadata) is not dict:
        return usage
    result = dict(usage) if usage else {}
    for name, key in (
        ("input_cached_tokens", "cached_content_token_count"),
        ("output_reasoning_tokens", "thoughts_token_count"),
    ):
        count = metadata.get(key)
        if name not in result and type(count) in (int, float) and count > 0:
            result[name] = count
    return result or None


def _cost_details(attrs: dict[str, Any]) -> dict[str, Any] | None:
    explicit = attrs.get(OBSERVATION_COST_DETAILS)
    if explicit:
        decoded = _decode_object(explicit)
        if decoded is not None:
            return decoded or None
    # Only a total: upstream reads no per-bucket cost attributes.
    total = _number(attrs.get("gen_ai.usage.cost"))
    if total is None:
        total = _number(attrs.get("llm.cost.total"))
    return None if total is None else {"total": total}


def _model_parameters(
    attrs: dict[str, Any], scope_name: str, flattened: dict[int, list[tuple[str, Any]]] | None
) -> dict[str, Any] | None:
    # Upstream's order: the Langfuse attribute, the Vercel AI SDK's settings, the JSON
    # attributes of OpenInference and Pydantic, then the flattened request parameters.
    params = _json_parameters(attrs.get(OBSERVATION_MODEL_PARAMETERS))
    if params is not None:
        return params or None
    if scope_name == "ai":
        return _vercel_model_parameters(attrs)
    for key in ("llm.invocation_parameters", "model_config"):
        params = _json_parameters(attrs.get(key))
        if params is not None:
            return params or None
    if not flattened:
        return None
    params = {}
    for family in (_REQUEST_PARAM, _INVOCATION_PARAM):
        for key, value in flattened.get(family, ()):
            params[key] = value
    return _sanitize_model_parameters(params) or None


def _json_parameters(value: Any) -> dict[str, Any] | None:
    """A JSON object attribute → sanitised parameters; None when absent or not an object."""
    if not value:
        return None
    decoded = _decode_object(value)
    return None if decoded is None else _sanitize_model_parameters(decoded)


_VERCEL_PARAMETERS: Final = (
    ("maxSteps", ("ai.settings.maxSteps",)),
    ("toolChoice", ("ai.prompt.toolChoice",)),
    ("maxTokens", ("gen_ai.request.max_tokens",)),
    ("finishReason", ("gen_ai.response.finish_reasons", "gen_ai.finishReason")),
    ("system", ("gen_ai.system", "ai.model.provider")),
    ("maxRetries", ("ai.settings.maxRetries",)),
    ("mode", ("ai.settings.mode",)),
    ("temperature", ("gen_ai.request.temperature",)),
    ("service_tier", ("gen_ai.request.service_tier",)),
)


def _vercel_model_parameters(attrs: dict[str, Any]) -> dict[str, Any] | None:
    # Upstream takes each setting's JavaScript `toString()`.
    params: dict[str, Any] = {}
    for name, keys in _VERCEL_PARAMETERS:
        for key in keys:
            if attrs.get(key) is not None:
                params[name] = _js_to_string(attrs[key])
                break
    if "service_tier" not in params:
        openai = (_provider_metadata(attrs) or _EMPTY).get("openai")
        tier = openai.get("serviceTier") if type(openai) is dict else None
        if tier is not None:
            params["service_tier"] = _js_to_string(tier)
    return params or None


def _js_to_string(value: Any) -> str:
    """JavaScript's `String(value)` for attribute values (arrays join with commas)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if kind is list:
        return ",".join("" if item is None else _js_to_string(item) for item in value)
    if kind is dict:
        return "[object Object]"
    return str(value)


def _provider_metadata(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The Vercel AI SDK's `ai.response.providerMetadata` (JSON text) as a dict."""
    value = attrs.get("ai.response.providerMetadata")
    return None if value is None else _decode_object(value)


def _completion_start_time(attrs: dict[str, Any], start_nanos: int) -> str | None:
    value = attrs.get(OBSERVATION_COMPLETION_START_TIME)
    if value is not None:
        iso = _iso_or_none(value)
        if iso is not None:
            return iso
    to_first_chunk = attrs.get("ai.response.msToFirstChunk") or attrs.get(
        "ai.stream.msToFirstChunk"
    )
    if to_first_chunk and start_nanos > 0:
        millis = _number(to_first_chunk)
        if millis is not None:
            return _safe_nanos_to_iso(start_nanos + int(-(-millis // 1)) * 1_000_000)
    return None


def _prompt(attrs: dict[str, Any]) -> tuple[str, int] | None:
    name = attrs.get(OBSERVATION_PROMPT_NAME) or attrs.get("langfuse.prompt.name")
    version = attrs.get(OBSERVATION_PROMPT_VERSION)
    if version is None:
        version = attrs.get("langfuse.prompt.version")
    if not name:
        vercel = _decode_object(attrs.get("ai.telemetry.metadata.langfusePrompt"))
        if vercel is None:
            return None
        name, version = vercel.get("name"), vercel.get("version")
    version = _prompt_version(version)
    # The ingestion schema wants both or neither.
    if not name or version is None:
        return None
    return _to_string(name), version


def spans_to_ingestion_events(
    resource_spans: list[ResourceSpans],
    *,
    sdk_version: str | None,
    received_at: datetime,
    new_id: Callable[[], str],
) -> list[dict[str, Any]]:
    """Convert decoded OTLP spans into Langfuse `POST /api/public/ingestion` batch events.

    `sdk_version` is the `x-langfuse-sdk-version` header of the Python SDK (None when absent);
    from 5.x on the SDK JSON-encodes every metadata value, which decides how metadata strings
    are decoded. Per span: an observation event (`<type>-create`, body id = span id) preceded
    by a `trace-create` event when the span is a root (full trace), carries trace attributes
    (partial trace), or is the first span of a trace in this call without either (a shallow
    `{id, timestamp, environment}` trace, dropped again if a fuller one for the same trace is
    produced in the same call). Every event gets `id=new_id()` and `timestamp=received_at`.
    """
    batch = _Batch(datetime_to_iso(received_at), new_id)
    header_major = _sdk_major(sdk_version)

    skipped: list[tuple[str, str]] = []
    for resource_span in resource_spans:
        resource_attrs = resource_span["resource_attributes"]
        resources: dict[bool, _ResourceContext] = {}
        for scope_span in resource_span["scope_spans"]:
            scope = _ScopeContext(scope_span["scope"], resource_attrs, resources, header_major)
            for span in scope_span["spans"]:
                try:
                    _map_span(span, batch, scope)
                except Exception as exc:  # one bad span must not cost its siblings (upstream)
                    skipped.append((str(span.get("span_id")), repr(exc)))
    if skipped:
        log.warning(
            "skipped %d malformed OTel span(s), first %s: %s",
            len(skipped),
            skipped[0][0],
            skipped[0][1],
        )
    return batch.finish()


class _ScopeContext:
    """What every span of one instrumentation scope shares, computed once."""

    __slots__ = ("name", "is_sdk", "is_old_python_sdk", "decode_metadata", "resource", "metadata")

    def __init__(
        self,
        scope: InstrumentationScope,
        resource_attrs: dict[str, Any],
        resources: dict[bool, _ResourceContext],
        header_major: int | None,
    ) -> None:
        self.name = name = scope["name"]
        version = scope["version"]
        self.is_sdk = is_sdk = name.startswith("langfuse-sdk")
        major = header_major
        if major is None and is_sdk:
            major = _sdk_major(version)
        json_encoded_metadata = major is not None and major >= 5
        self.decode_metadata = _metadata_decoder(json_encoded_metadata)
        resource = resources.get(json_encoded_metadata)
        if resource is None:
            resource = _ResourceContext(resource_attrs, self.decode_metadata)
            resources[json_encoded_metadata] = resource
        self.resource = resource
        self.is_old_python_sdk = (
            name == "langfuse-sdk"
            and resource_attrs.get("telemetry.sdk.language") == "python"
            and _is_at_most_3_3(version)
        )
        self.metadata = {"name": name, "version": version, "attributes": scope["attributes"]}


# (scope, keys read for a partial trace body, their values)
_PartialSignature = tuple[_ScopeContext, tuple[str, ...], tuple[Any, ...]]


class _Batch:
    """Per-call state: the events so far and what is known about each trace."""

    __slots__ = (
        "events",
        "received_iso",
        "new_id",
        "full_traces",
        "shallow_traces",
        "trace_bodies",
        "earliest_start",
        "last_partial",
    )

    def __init__(self, received_iso: str, new_id: Callable[[], str]) -> None:
        self.events: list[dict[str, Any]] = []
        self.received_iso = received_iso
        self.new_id = new_id
        self.full_traces: set[str] = set()
        self.shallow_traces: dict[str, dict[str, Any]] = {}  # trace id → its shallow event
        self.trace_bodies: list[dict[str, Any]] = []
        self.earliest_start: dict[str, str] = {}  # trace id → earliest span start (ISO)
        # trace id → (scope, trace attributes) of its last partial trace event
        self.last_partial: dict[str, _PartialSignature | None] = {}

    def add_trace(self, body: dict[str, Any], signature: _PartialSignature | None) -> None:
        self.events.append(
            {
                "id": self.new_id(),
                "timestamp": self.received_iso,
                "type": "trace-create",
                "body": body,
            }
        )
        self.trace_bodies.append(body)
        self.full_traces.add(body["id"])
        self.last_partial[body["id"]] = signature

    def add_shallow_trace(self, body: dict[str, Any]) -> None:
        event = {
            "id": self.new_id(),
            "timestamp": self.received_iso,
            "type": "trace-create",
            "body": body,
        }
        self.events.append(event)
        self.trace_bodies.append(body)
        self.shallow_traces[body["id"]] = event

    def finish(self) -> list[dict[str, Any]]:
        # Every event of a call shares one envelope timestamp, so the consumer folds a trace's
        # events in list order and keeps the first (immutable) trace timestamp. Children are
        # exported before their parents: give every trace body the earliest span start of its
        # trace instead, which is the root's start when the root is in the batch.
        earliest = self.earliest_start
        for body in self.trace_bodies:
            body["timestamp"] = earliest[body["id"]]
        events = self.events
        full = self.full_traces
        drop = {id(event) for trace_id, event in self.shallow_traces.items() if trace_id in full}
        if drop:
            events = [event for event in events if id(event) not in drop]
        return events


def _is_at_most_3_3(version: str) -> bool:
    if not version:
        return True
    parts = version.split(".")
    try:
        major = int(parts[0])
        minor = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return True  # upstream compares NaN, which never counts as "newer than 3.3"
    return major < 3 or (major == 3 and minor <= 3)


def _map_span(
    span: Span,
    batch: _Batch,
    scope: _ScopeContext,
) -> None:
    attrs = span["attributes"]
    get = attrs.get
    trace_id = span["trace_id"]
    parent_id = span["parent_span_id"]
    as_root = get(AS_ROOT)
    is_root = parent_id is None or as_root is True or as_root == "true"
    if is_root:
        parent_id = None
    decode_metadata = scope.decode_metadata

    # Collect the prefixed families; the span's key tuple says which keys need work.
    keys = tuple(attrs)
    shape = _SHAPES.get(keys) or _shape(keys)
    observation_meta: dict[str, Any] | None = None
    trace_meta: dict[str, Any] | None = None
    compat_meta: dict[str, Any] | None = None
    experiment: dict[str, Any] | None = None
    flattened: dict[int, list[tuple[str, Any]]] | None = None
    for key, family, suffix in shape.families:
        value = attrs[key]
        if family == _OBS_META:
            if observation_meta is None:
                observation_meta = {}
            observation_meta[suffix] = decode_metadata(value)
        elif family == _TRACE_META:
            if trace_meta is None:
                trace_meta = {}
            trace_meta[suffix] = decode_metadata(value)
        elif family == _EXPERIMENT:
            if experiment is None:
                experiment = {}
            experiment[suffix] = _decode_json(value) if suffix in _EXPERIMENT_JSON else value
        elif family == _COMPAT_META:
            if compat_meta is None:
                compat_meta = {}
            compat_meta[suffix] = _decode_structured(value)
        elif family == _EXPERIMENT_META or family == _EXPERIMENT_ITEM_META:
            if experiment is None:
                experiment = {}
            name = "metadata" if family == _EXPERIMENT_META else "item_metadata"
            nested = experiment.get(name)
            if type(nested) is not dict:
                nested = {}
                experiment[name] = nested
            nested[suffix] = _decode_structured(value)
        else:
            if flattened is None:
                flattened = {}
            pairs = flattened.get(family)
            if pairs is None:
                pairs = flattened[family] = []
            pairs.append((suffix, value))
    has_trace_updates = shape.has_trace_metadata or any(map(get, shape.trace_update_keys))
    leftover: dict[str, Any] | None = None
    if not scope.is_sdk:
        leftover = {}
        for key in shape.visible:
            value = attrs[key]
            leftover[key] = value if type(value) is str else _compact_dumps(value)

    # Upstream's extractMetadata(span, "observation"); spread order matters (later wins).
    span_metadata: dict[str, Any] = {}
    if shape.metadata_extras:
        top = get(OBSERVATION_METADATA) or get(COMPAT_METADATA)
        if top:
            span_metadata.update(_top_level_metadata(top, decode_metadata))
    if compat_meta:
        span_metadata.update(compat_meta)
    if observation_meta:
        span_metadata.update(observation_meta)
    if shape.metadata_extras:
        tools = get("ai.prompt.tools")
        if tools:
            span_metadata["tools"] = tools
    resource = scope.resource
    metadata: dict[str, Any] = (
        {**resource.trace_metadata, **span_metadata} if resource.trace_metadata else span_metadata
    )
    if leftover is not None:
        metadata["attributes"] = leftover
    # Shared by every event of the scope: consumers must not mutate them in place.
    metadata["resourceAttributes"] = resource.attributes
    metadata["scope"] = scope.metadata

    environment = _environment(attrs, resource.attributes)
    start_nanos = span["start_time_unix_nano"]
    start_iso = _safe_nanos_to_iso(start_nanos)
    end_iso = _safe_nanos_to_iso(span["end_time_unix_nano"])
    if start_iso is None:
        start_iso = end_iso or batch.received_iso
    if end_iso is None:
        end_iso = start_iso
    earliest = batch.earliest_start.get(trace_id)
    if earliest is None or start_iso < earliest:
        batch.earliest_start[trace_id] = start_iso
    version = get(VERSION) or resource.service_version
    if version is not None and type(version) is not str:
        version = _compact_dumps(version)
    name = _observation_name(span["name"], attrs) if shape.named else span["name"]

    # Input/output: Langfuse attributes first, then the other instrumentations.
    observation_input = get(OBSERVATION_INPUT)
    observation_output = get(OBSERVATION_OUTPUT)
    if (
        observation_input is None
        and observation_output is None
        and (shape.foreign_io or span["events"] or scope.name == "pydantic-ai")
    ):
        observation_input, observation_output = _foreign_io(
            attrs, span["events"], scope.name, flattened
        )
    if observation_input is not None:
        observation_input = _decode_json(observation_input)
    if observation_output is not None:
        observation_output = _decode_json(observation_output)

    # --- trace event
    if is_root:
        trace_name = get(TRACE_NAME) or name
        trace_input = get(TRACE_INPUT)
        trace_output = get(TRACE_OUTPUT)
        if trace_input or trace_output:
            # Upstream's trace domain reads the Langfuse attributes only, each side falling
            # back to the observation's own attribute, never to another instrumentation's.
            trace_input = _decode_json(trace_input or get(OBSERVATION_INPUT))
            trace_output = _decode_json(trace_output or get(OBSERVATION_OUTPUT))
        else:
            trace_input, trace_output = observation_input, observation_output
        trace_body = _trace_body(
            attrs,
            trace_id,
            start_iso,
            environment,
            version,
            scope,
            trace_meta,
            observation_meta,
            compat_meta,
            trace_name,
            trace_input,
            trace_output,
        )
        # The root also contributes its observation metadata and attributes, as upstream.
        trace_metadata = trace_body["metadata"]
        trace_metadata.update(span_metadata)
        if leftover is not None:
            trace_metadata["attributes"] = leftover
        trace_metadata["resourceAttributes"] = resource.attributes
        trace_metadata["scope"] = scope.metadata
        batch.add_trace(trace_body, None)
    elif has_trace_updates:
        # SDK 5 copies the propagated trace attributes onto every span: a span whose trace
        # attributes equal those of the previous partial update of its trace adds nothing.
        # The scope object itself (compared by identity, kept alive by the tuple): its id()
        # could be reused by a later scope once this one is collected.
        signature = (scope, shape.trace_body_keys, tuple(map(get, shape.trace_body_keys)))
        if batch.last_partial.get(trace_id) != signature:
            trace_body = _trace_body(
                attrs,
                trace_id,
                start_iso,
                environment,
                version,
                scope,
                trace_meta,
                observation_meta,
                compat_meta,
                get(TRACE_NAME),
                _decode_json(get(TRACE_INPUT)),
                _decode_json(get(TRACE_OUTPUT)),
            )
            batch.add_trace(trace_body, signature)
    elif trace_id not in batch.full_traces and trace_id not in batch.shallow_traces:
        batch.add_shallow_trace(
            {"id": trace_id, "timestamp": start_iso, "environment": environment}
        )

    # --- observation event
    # Langfuse SDK spans declare their type: resolve that without the mapper chain.
    declared = get(OBSERVATION_TYPE)
    observation_type = (
        _LANGFUSE_TYPES.get(declared)
        if type(declared) is str and not scope.is_old_python_sdk
        else None
    ) or _infer_type(attrs, scope, span["name"], shape)
    body: dict[str, Any] = {"id": span["span_id"], "traceId": trace_id}
    if parent_id is not None:
        body["parentObservationId"] = parent_id
    body["name"] = name
    body["startTime"] = start_iso
    if observation_type != _EVENT:
        body["endTime"] = end_iso
    body["environment"] = environment
    body["metadata"] = metadata

    level = get(OBSERVATION_LEVEL)
    level = _LEVELS.get(level.upper()) if type(level) is str else None
    status = span["status"]
    if level is None:
        if status["code"] == 2:
            level = "ERROR"
        elif scope.name == "livekit-agents" and span["name"] in _LIVEKIT_DEBUG_SPANS:
            level = "DEBUG"
        else:
            level = "DEFAULT"
    body["level"] = level
    status_message = get(OBSERVATION_STATUS_MESSAGE)
    if status_message is None:
        status_message = status["message"] or None
    if status_message is not None:
        body["statusMessage"] = _to_string(status_message)
    if version is not None:
        body["version"] = version

    if observation_type in _GENERATION_LIKE:
        if shape.completion_start:
            completion_start = _completion_start_time(attrs, start_nanos)
            if completion_start is not None:
                body["completionStartTime"] = completion_start
        vercel = scope.name == "ai"
        # The Vercel AI SDK repeats its steps' model and usage on the agent spans around
        # them: upstream keeps those off the agent spans, so nothing is counted twice.
        priced = not vercel or get("gen_ai.operation.name") not in _VERCEL_AGENT_OPERATIONS
        if priced and shape.model:
            model = _first_truthy(attrs, _MODEL_KEYS)
            if not model and get(GENKIT_SUBTYPE) == "model":
                model = get(GENKIT_NAME)
            if model:
                body["model"] = _to_string(model)
        if shape.parameters or vercel:
            model_parameters = _model_parameters(attrs, scope.name, flattened)
            if model_parameters:
                body["modelParameters"] = model_parameters
        if priced and (shape.usage or vercel):
            usage = None
            explicit_usage = get(OBSERVATION_USAGE_DETAILS)
            if explicit_usage:
                usage = _decode_object(explicit_usage)
            if usage is None:
                if vercel:
                    usage = _vercel_usage(attrs)
                else:
                    if flattened and _USAGE in flattened:
                        usage = _usage_from_attributes(flattened[_USAGE])
                    adk_response = get(_ADK_RESPONSE)
                    if adk_response:
                        usage = _google_adk_usage(adk_response, usage)
            if usage:
                body["usageDetails"] = usage
        if priced and shape.cost:
            cost = _cost_details(attrs)
            if cost:
                body["costDetails"] = cost
        if observation_type == _GENERATION and shape.prompt:
            prompt = _prompt(attrs)
            if prompt is not None:
                body["promptName"], body["promptVersion"] = prompt

    if observation_input is not None:
        body["input"] = observation_input
    if observation_output is not None:
        body["output"] = observation_output
    if experiment:
        body["experiment"] = experiment
    batch.events.append(
        {
            "id": batch.new_id(),
            "timestamp": batch.received_iso,
            "type": EVENT_TYPES[observation_type],
            "body": body,
        }
    )


def _trace_body(
    attrs: dict[str, Any],
    trace_id: str,
    start_iso: str,
    environment: str,
    version: str | None,
    scope: _ScopeContext,
    trace_meta: dict[str, Any] | None,
    observation_meta: dict[str, Any] | None,
    compat_meta: dict[str, Any] | None,
    trace_name: Any,
    trace_input: Any,
    trace_output: Any,
) -> dict[str, Any]:
    """A full (root) or partial trace-create body; absent fields are left out."""
    get = attrs.get
    resource = scope.resource
    metadata = dict(resource.trace_metadata)
    top = get(TRACE_METADATA) or get(COMPAT_METADATA)
    if top:
        metadata.update(_top_level_metadata(top, scope.decode_metadata))
    if compat_meta:
        metadata.update(compat_meta)
    if trace_meta:
        metadata.update(trace_meta)
    tools = get("ai.prompt.tools")
    if tools:
        metadata["tools"] = tools
    metadata["resourceAttributes"] = resource.attributes
    metadata["scope"] = scope.metadata

    body: dict[str, Any] = {"id": trace_id, "timestamp": start_iso}
    if trace_name:
        body["name"] = _to_string(trace_name)
    body["metadata"] = metadata
    if version is not None:
        body["version"] = version
    release = get(RELEASE) or resource.release
    if release:
        body["release"] = _to_string(release)
    observation_meta = observation_meta or _EMPTY
    trace_meta = trace_meta or _EMPTY
    user_id = _string_or_none(
        _first_truthy(attrs, _USER_ID_KEYS)
        or observation_meta.get("langfuse_user_id")
        or trace_meta.get("langfuse_user_id")
        or get("ai.telemetry.metadata.userId")
    )
    if user_id is not None:
        body["userId"] = user_id
    session_id = _string_or_none(
        _first_truthy(attrs, _SESSION_ID_KEYS)
        or observation_meta.get("langfuse_session_id")
        or trace_meta.get("langfuse_session_id")
        or get("ai.telemetry.metadata.sessionId")
    )
    if session_id is not None:
        body["sessionId"] = session_id
    public = _public(attrs)
    if public is not None:
        body["public"] = public
    tags = _tags(
        _first_truthy(attrs, _TAG_KEYS)
        or observation_meta.get("langfuse_tags")
        or trace_meta.get("langfuse_tags")
        or get("ai.telemetry.metadata.tags")
        or get("tag.tags")
    )
    if tags:
        body["tags"] = tags
    body["environment"] = environment
    if trace_input is not None:
        body["input"] = trace_input
    if trace_output is not None:
        body["output"] = trace_output
    return body


_EMPTY: Final[dict[str, Any]] = {}
