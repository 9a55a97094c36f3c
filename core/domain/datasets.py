"""Datasets, their versioned items, dataset runs (experiments) and run items.

Items are versioned as upstream does it: every write closes the current row (`valid_to`) and
adds a new one (`valid_from`), a delete adds a tombstone row, so the state of a dataset can be
read as of any time. A dataset run is what SDK 5 calls an experiment: runs without a dataset
are experiments over local data. JSON Schemas on a dataset constrain its items; the validator
here covers the JSON Schema keywords ajv (upstream's validator) knows in its default draft-07
mode, with ajv's messages, and stops at the first error as upstream configures it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.tracing import DEFAULT_ENVIRONMENT, Level


class DatasetStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


@dataclass(slots=True)
class Dataset:
    id: str
    project_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    metadata: Any = None
    input_schema: Any = None
    expected_output_schema: Any = None


@dataclass(slots=True)
class DatasetItem:
    """One version of an item: `valid_to` None marks the current version of its id, and an
    item whose current version `is_deleted` no longer exists."""

    id: str
    project_id: str
    dataset_id: str
    valid_from: datetime
    created_at: datetime
    updated_at: datetime
    status: DatasetStatus = DatasetStatus.ACTIVE
    input: Any = None
    expected_output: Any = None
    metadata: Any = None
    source_trace_id: str | None = None
    source_observation_id: str | None = None
    valid_to: datetime | None = None
    is_deleted: bool = False

    def in_force_at(self, at: datetime | None) -> bool:
        """Whether this version is the one in force at `at` (None: now)."""
        if at is None:
            return self.valid_to is None
        return self.valid_from <= at and (self.valid_to is None or self.valid_to > at)


@dataclass(slots=True)
class DatasetRun:
    """A dataset run, or an SDK experiment (`dataset_id` None for local data)."""

    id: str
    project_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    dataset_id: str | None = None
    description: str | None = None
    metadata: Any = None


@dataclass(slots=True)
class DatasetRunItem:
    """Links a dataset item (or, for local data, an item hash) to the trace that ran it.

    `start_time`/`end_time`, `level` and `environment` are the item's root observation's (the
    experiment task span), so experiments can be listed without reading telemetry.
    """

    id: str
    project_id: str
    dataset_run_id: str
    dataset_item_id: str
    trace_id: str
    created_at: datetime
    updated_at: datetime
    start_time: datetime
    observation_id: str | None = None
    end_time: datetime | None = None
    level: Level = Level.DEFAULT
    environment: str = DEFAULT_ENVIRONMENT
    dataset_item_version: datetime | None = None
    expected_output: Any = None
    item_metadata: Any = None


@dataclass(slots=True)
class ExperimentSummary:
    run: DatasetRun
    start_time: datetime
    end_time: datetime
    item_count: int
    # Ordering key of the experiment list: its latest item start.
    last_activity: datetime


# --- item versions -------------------------------------------------------------------------

VERSION_STEP: Final = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class ItemChanges:
    """A write to an item. None keeps the stored value (upstream treats `null` as absent)."""

    input: Any = None
    expected_output: Any = None
    metadata: Any = None
    source_trace_id: str | None = None
    source_observation_id: str | None = None
    status: DatasetStatus | None = None


def next_valid_from(now: datetime, current: DatasetItem | None) -> datetime:
    """Versions of one id must be strictly ordered even when writes share a clock tick."""
    if current is None:
        return now
    return max(now, current.valid_from + VERSION_STEP)


def revise_item(
    current: DatasetItem | None,
    *,
    item_id: str,
    project_id: str,
    dataset_id: str,
    changes: ItemChanges,
    now: datetime,
) -> DatasetItem:
    """The next version of an item: what `changes` leaves out carries over from `current`."""
    valid_from = next_valid_from(now, current)
    if current is None or current.is_deleted:
        return DatasetItem(
            id=item_id,
            project_id=project_id,
            dataset_id=dataset_id,
            valid_from=valid_from,
            created_at=now,
            updated_at=valid_from,
            status=changes.status or DatasetStatus.ACTIVE,
            input=changes.input,
            expected_output=changes.expected_output,
            metadata=changes.metadata,
            source_trace_id=changes.source_trace_id,
            source_observation_id=changes.source_observation_id,
        )

    def pick(new: Any, old: Any) -> Any:
        return old if new is None else new

    return replace(
        current,
        valid_from=valid_from,
        valid_to=None,
        updated_at=valid_from,
        status=pick(changes.status, current.status),
        input=pick(changes.input, current.input),
        expected_output=pick(changes.expected_output, current.expected_output),
        metadata=pick(changes.metadata, current.metadata),
        source_trace_id=pick(changes.source_trace_id, current.source_trace_id),
        source_observation_id=pick(changes.source_observation_id, current.source_observation_id),
    )


def tombstone(current: DatasetItem, now: datetime) -> DatasetItem:
    """The version that deletes an item: reads as of later times no longer see it."""
    valid_from = next_valid_from(now, current)
    return replace(
        current, valid_from=valid_from, valid_to=None, updated_at=valid_from, is_deleted=True
    )


def state_as_of(versions: Iterable[DatasetItem], at: datetime | None) -> DatasetItem | None:
    """The version of one item in force at `at` (None: the current one), unless deleted."""
    for version in versions:
        if version.in_force_at(at):
            return None if version.is_deleted else version
    return None


# --- names and ids ---------------------------------------------------------------------------

_HTML_TAG: Final = re.compile(r"<[^>]*>")


def dataset_name_problem(name: str) -> str | None:
    """Upstream's `DatasetNameSchema`: non-empty, no HTML, folder-style slashes."""
    if not name.strip():
        return "Name cannot be empty"
    if _HTML_TAG.search(name):
        return "Text cannot contain HTML tags"
    if name.startswith("/"):
        return "Name cannot start with a slash"
    if "//" in name:
        return "Name cannot contain consecutive slashes"
    if name.endswith("/"):
        return "Name cannot end with a slash"
    return None


def stable_experiment_id(project_id: str, dataset_id: str, run_name: str) -> str:
    """The id SDK 5 gives a dataset experiment and upstream gives a dataset run by name.

    Byte for byte the SDK's derivation (JSON array without spaces, SHA-256, 16 hex chars), so a
    run made through `POST /dataset-run-items` and an SDK experiment with the same run name on
    the same dataset are one run.
    """
    payload = json.dumps(
        ["langfuse-experiment-v1", project_id, dataset_id, run_name],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def metadata_object(value: Any) -> dict[str, Any] | None:
    """Upstream's `resolveMetadata`: objects stay, anything else is wrapped."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    return {"metadata": value}


# --- experiment links from spans -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExperimentLink:
    """One span's experiment attributes (`langfuse.experiment.*`), already decoded."""

    observation_id: str
    trace_id: str
    experiment_id: str
    experiment_name: str | None
    item_id: str
    root_observation_id: str | None = None
    dataset_id: str | None = None
    description: str | None = None
    metadata: Any = None
    item_version: datetime | None = None
    item_metadata: Any = None
    expected_output: Any = None
    has_expected_output: bool = False


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def parse_experiment_link(
    observation_id: str, trace_id: str, attributes: Mapping[str, Any]
) -> ExperimentLink | None:
    """None when the span does not name both an experiment and an item."""
    experiment_id = _text(attributes.get("id"))
    item_id = _text(attributes.get("item_id"))
    if experiment_id is None or item_id is None or not trace_id:
        return None
    return ExperimentLink(
        observation_id=observation_id,
        trace_id=trace_id,
        experiment_id=experiment_id,
        experiment_name=_text(attributes.get("name")),
        item_id=item_id,
        root_observation_id=_text(attributes.get("item_root_observation_id")),
        dataset_id=_text(attributes.get("dataset_id")),
        description=_text(attributes.get("description")),
        metadata=attributes.get("metadata"),
        item_version=_timestamp(attributes.get("item_version")),
        item_metadata=attributes.get("item_metadata"),
        expected_output=attributes.get("item_expected_output"),
        has_expected_output="item_expected_output" in attributes,
    )


# --- filters of the experiments API ----------------------------------------------------------

FILTER_OPERATORS: Final = (
    "any of",
    "none of",
    "=",
    "!=",
    "contains",
    "does not contain",
    "starts with",
    "ends with",
)


@dataclass(frozen=True, slots=True)
class FieldCondition:
    """`field` is a storage-neutral name: experiment_id, experiment_name, item_id, dataset_id."""

    field: str
    operator: str
    values: tuple[str, ...]

    def matches(self, value: str | None) -> bool:
        text = value or ""
        op = self.operator
        if op == "any of":
            return text in self.values
        if op == "none of":
            return text not in self.values
        first = self.values[0] if self.values else ""
        if op == "=":
            return text == first
        if op == "!=":
            return text != first
        if op == "contains":
            return first in text
        if op == "does not contain":
            return first not in text
        if op == "starts with":
            return text.startswith(first)
        return text.endswith(first)


def parse_filter(raw: Any, columns: Mapping[str, str]) -> list[FieldCondition]:
    """The `filter` query parameter: a JSON array of `{column, operator, value}` objects."""
    if not isinstance(raw, list):
        raise InvalidInput("Invalid request data: filter must be a JSON array of conditions")
    conditions: list[FieldCondition] = []
    for index, entry in enumerate(raw):
        where = f"filter[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidInput(f"Invalid request data: {where} must be an object")
        column = entry.get("column")
        if column not in columns:
            raise InvalidInput(
                f"Invalid request data: {where}.column must be one of {sorted(columns)}"
            )
        operator = entry.get("operator")
        if operator not in FILTER_OPERATORS:
            raise InvalidInput(
                f"Invalid request data: {where}.operator must be one of {list(FILTER_OPERATORS)}"
            )
        value = entry.get("value")
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values) or (
            operator not in ("any of", "none of") and len(values) != 1
        ):
            raise InvalidInput(
                f"Invalid request data: {where}.value must be a string, or an array of "
                "strings for 'any of' / 'none of'"
            )
        conditions.append(FieldCondition(columns[column], operator, tuple(values)))
    return conditions


# --- JSON Schema -----------------------------------------------------------------------------

MAX_SCHEMA_CHARS: Final = 10_000
JSON_TYPES: Final = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})
# What ajv accepts in strict mode (draft-07 plus the later keywords it ships); anything else
# makes upstream refuse the schema.
KNOWN_KEYWORDS: Final = frozenset(
    """
    $schema $id $ref $defs definitions $comment $anchor title description default examples
    readOnly writeOnly deprecated format contentEncoding contentMediaType contentSchema nullable
    type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength
    minLength pattern items prefixItems additionalItems contains minContains maxContains maxItems
    minItems uniqueItems maxProperties minProperties required properties patternProperties
    additionalProperties dependencies dependentRequired dependentSchemas propertyNames if then
    else allOf anyOf oneOf not
    """.split()
)
_SCHEMA_MAPS: Final = (
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
)
_SCHEMA_LISTS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_SINGLES: Final = (
    "additionalProperties",
    "additionalItems",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "contentSchema",
)
_COUNTS: Final = (
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "minContains",
    "maxContains",
)
_BOUNDS: Final = ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum")


@dataclass(frozen=True, slots=True)
class SchemaError:
    path: str  # JSON pointer into the validated value, "/" for the value itself
    message: str
    keyword: str

    def describe(self) -> str:
        return self.message if self.path == "/" else f"{self.path} {self.message}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _resolve_pointer(root: Any, ref: str) -> Any:
    """A local `$ref` ("#", "#/definitions/x"); raises LookupError when it does not resolve."""
    if not ref.startswith("#"):
        raise LookupError(f"can't resolve reference {ref} (only local references are supported)")
    target = root
    pointer = ref[1:]
    if not pointer:
        return target
    if not pointer.startswith("/"):
        raise LookupError(f"can't resolve reference {ref}")
    for raw in pointer[1:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise LookupError(f"can't resolve reference {ref}")
    if not isinstance(target, (dict, bool)):
        raise LookupError(f"reference {ref} does not point to a schema")
    return target


def _nested_unbounded_repeat(pattern: str) -> bool:
    """Whether an unbounded quantifier sits inside another (`(a+)+`): patterns run on the
    server against request data, and Python's engine backtracks exponentially on those.

    Uses the standard library's own (private) regex parser; if it moves, the check is skipped.
    """
    try:
        from re import _constants as constants  # type: ignore[attr-defined]
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other interpreters
        return False
    repeats = {constants.MAX_REPEAT, constants.MIN_REPEAT}
    repeats.add(getattr(constants, "POSSESSIVE_REPEAT", constants.MAX_REPEAT))

    def children(value: Any) -> list[Any]:
        if isinstance(value, parser.SubPattern):
            return [value]
        if isinstance(value, (list, tuple)):
            return [child for item in value for child in children(item)]
        return []

    def nested(node: Any, inside: bool) -> bool:
        for op, av in node:
            if op in repeats:
                _low, high, sub = av
                unbounded = high == constants.MAXREPEAT
                if (unbounded and inside) or nested(sub, inside or unbounded):
                    return True
            elif any(nested(child, inside) for child in children(av)):
                return True
        return False

    try:
        return nested(parser.parse(pattern), False)
    except Exception:  # unparsable patterns were already refused by re.compile
        return False


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    if _nested_unbounded_repeat(pattern):
        return "may cause catastrophic backtracking (nested unbounded quantifiers)"
    return None


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a JSON Schema upstream would compile, or None."""
    try:
        size = len(json.dumps(schema, separators=(",", ":")))
    except (TypeError, ValueError):
        return "schema is not JSON"
    if size > MAX_SCHEMA_CHARS:
        return f"schema exceeds {MAX_SCHEMA_CHARS} characters"
    seen: set[int] = set()
    try:
        return _check_schema(schema, schema, "#", seen)
    except RecursionError:
        return "schema is nested too deeply"


def _check_schema(node: Any, root: Any, where: str, seen: set[int]) -> str | None:
    if isinstance(node, bool):
        return None
    if not isinstance(node, dict):
        return f"{where} must be an object or a boolean"
    if id(node) in seen:
        return None
    seen.add(id(node))
    for key, value in node.items():
        if key not in KNOWN_KEYWORDS:
            return f"strict mode: unknown keyword: {key!r} at {where}"
        problem = _check_keyword(key, value, root, f"{where}/{key}", seen)
        if problem is not None:
            return problem
    return None


def _check_keyword(key: str, value: Any, root: Any, where: str, seen: set[int]) -> str | None:
    if key == "type":
        types = value if isinstance(value, list) else [value]
        if not types or not all(t in JSON_TYPES for t in types) or len(set(types)) != len(types):
            return f"{where} must be one of {sorted(JSON_TYPES)} or an array of them"
    elif key == "enum":
        if not isinstance(value, list):
            return f"{where} must be an array"
    elif key == "required":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{where} must be an array of strings"
    elif key in _COUNTS:
        if not _is_count(value):
            return f"{where} must be a non-negative integer"
    elif key in _BOUNDS:
        if not _is_number(value):
            return f"{where} must be a number"
    elif key == "multipleOf":
        if not _is_number(value) or value <= 0:
            return f"{where} must be a number greater than 0"
    elif key == "pattern":
        if not isinstance(value, str):
            return f"{where} must be a string"
        problem = _regex_problem(value)
        if problem is not None:
            return f"{where} {problem}"
    elif key == "uniqueItems" or key in ("readOnly", "writeOnly", "deprecated", "nullable"):
        if not isinstance(value, bool):
            return f"{where} must be a boolean"
    elif key == "$ref":
        if not isinstance(value, str):
            return f"{where} must be a string"
        try:
            _resolve_pointer(root, value)
        except LookupError as exc:
            return str(exc)
    elif key in _SCHEMA_MAPS:
        if not isinstance(value, dict):
            return f"{where} must be an object"
        if key == "patternProperties":
            for pattern in value:
                problem = _regex_problem(pattern)
                if problem is not None:
                    return f"{where}: {pattern!r} {problem}"
        for name, sub in value.items():
            problem = _check_schema(sub, root, f"{where}/{name}", seen)
            if problem is not None:
                return problem
    elif key in _SCHEMA_LISTS:
        if not isinstance(value, list) or not value:
            return f"{where} must be a non-empty array of schemas"
        for index, sub in enumerate(value):
            problem = _check_schema(sub, root, f"{where}/{index}", seen)
            if problem is not None:
                return problem
    elif key in _SCHEMA_SINGLES:
        return _check_schema(value, root, where, seen)
    elif key == "items":
        subs = value if isinstance(value, list) else [value]
        for index, sub in enumerate(subs):
            problem = _check_schema(sub, root, f"{where}/{index}", seen)
            if problem is not None:
                return problem
    elif key == "dependencies":
        if not isinstance(value, dict):
            return f"{where} must be an object"
        for name, sub in value.items():
            if isinstance(sub, list):
                if not all(isinstance(v, str) for v in sub):
                    return f"{where}/{name} must be an array of strings or a schema"
            else:
                problem = _check_schema(sub, root, f"{where}/{name}", seen)
                if problem is not None:
                    return problem
    elif key == "dependentRequired":
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value.values()
        ):
            return f"{where} must be an object of string arrays"
    elif key in ("$schema", "$id", "$comment", "$anchor", "format", "title", "description"):
        if not isinstance(value, str):
            return f"{where} must be a string"
    return None


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: `true` is not `1`, `1` is `1.0`, objects ignore key order."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def _has_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "number":
        return _is_number(value)
    # integer: ajv counts 1.0 as an integer, like JavaScript does.
    return _is_number(value) and (isinstance(value, int) or float(value).is_integer())


def _pointer(path: str, segment: str | int) -> str:
    text = str(segment).replace("~", "~0").replace("/", "~1")
    return f"{path}/{text}" if path != "/" else f"/{text}"


def _format_number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return str(value)


class _SchemaValidator:
    """First-error validation (ajv `allErrors: false`); formats are not checked (upstream turns
    format validation off)."""

    def __init__(self, root: Any) -> None:
        self._root = root
        self._active: set[tuple[int, int]] = set()

    def first_error(self, value: Any, schema: Any, path: str) -> SchemaError | None:
        if schema is True:
            return None
        if schema is False:
            return SchemaError(path, "boolean schema is false", "false schema")
        if not isinstance(schema, dict):
            return None
        # A $ref cycle that revisits the same value proves nothing new.
        key = (id(schema), id(value))
        if key in self._active:
            return None
        self._active.add(key)
        try:
            return self._check(value, schema, path)
        finally:
            self._active.discard(key)

    def _check(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            error = self.first_error(value, _resolve_pointer(self._root, ref), path)
            if error is not None:
                return error
        checks = (
            self._type,
            self._values,
            self._number,
            self._string,
            self._array,
            self._object,
            self._combinators,
        )
        for check in checks:
            error = check(value, schema, path)
            if error is not None:
                return error
        return None

    def _type(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        expected = schema.get("type")
        if expected is None:
            return None
        types = expected if isinstance(expected, list) else [expected]
        nullable = schema.get("nullable") is True and value is None
        if nullable or any(_has_type(value, t) for t in types):
            return None
        return SchemaError(path, f"must be {','.join(types)}", "type")

    def _values(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        if "const" in schema and not json_equal(value, schema["const"]):
            return SchemaError(path, "must be equal to constant", "const")
        allowed = schema.get("enum")
        if isinstance(allowed, list) and not any(json_equal(value, a) for a in allowed):
            return SchemaError(path, "must be equal to one of the allowed values", "enum")
        return None

    def _number(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        if not _is_number(value):
            return None
        checks = (
            ("maximum", lambda bound: value <= bound, "<="),
            ("minimum", lambda bound: value >= bound, ">="),
            ("exclusiveMaximum", lambda bound: value < bound, "<"),
            ("exclusiveMinimum", lambda bound: value > bound, ">"),
        )
        for keyword, ok, sign in checks:
            bound = schema.get(keyword)
            if _is_number(bound) and not ok(bound):
                return SchemaError(path, f"must be {sign} {_format_number(bound)}", keyword)
        step = schema.get("multipleOf")
        if _is_number(step) and step > 0:
            quotient = value / step
            if not math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9):
                return SchemaError(
                    path, f"must be multiple of {_format_number(step)}", "multipleOf"
                )
        return None

    def _string(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        if not isinstance(value, str):
            return None
        longest = schema.get("maxLength")
        if _is_count(longest) and len(value) > longest:
            return SchemaError(path, f"must NOT have more than {longest} characters", "maxLength")
        shortest = schema.get("minLength")
        if _is_count(shortest) and len(value) < shortest:
            return SchemaError(path, f"must NOT have fewer than {shortest} characters", "minLength")
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, value) is None:
            return SchemaError(path, f'must match pattern "{pattern}"', "pattern")
        return None

    def _array(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        if not isinstance(value, list):
            return None
        most = schema.get("maxItems")
        if _is_count(most) and len(value) > most:
            return SchemaError(path, f"must NOT have more than {most} items", "maxItems")
        least = schema.get("minItems")
        if _is_count(least) and len(value) < least:
            return SchemaError(path, f"must NOT have fewer than {least} items", "minItems")
        if schema.get("uniqueItems") is True:
            for later in range(len(value)):
                for earlier in range(later):
                    if json_equal(value[later], value[earlier]):
                        return SchemaError(
                            path,
                            "must NOT have duplicate items "
                            f"(items ## {earlier} and {later} are identical)",
                            "uniqueItems",
                        )
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft-07 tuple form
            prefix, rest = items, schema.get("additionalItems", True)
        else:
            prefix, rest = (
                (prefix if isinstance(prefix, list) else []),
                (True if items is None else items),
            )
        for index, element in enumerate(value):
            sub = prefix[index] if index < len(prefix) else rest
            if sub is False and index >= len(prefix):
                return SchemaError(
                    path, f"must NOT have more than {len(prefix)} items", "additionalItems"
                )
            error = self.first_error(element, sub, _pointer(path, index))
            if error is not None:
                return error
        if "contains" in schema:
            matched = sum(
                1
                for index, element in enumerate(value)
                if self.first_error(element, schema["contains"], _pointer(path, index)) is None
            )
            low = schema.get("minContains", 1)
            high = schema.get("maxContains")
            if matched < low:
                return SchemaError(path, f"must contain at least {low} valid item(s)", "contains")
            if _is_count(high) and matched > high:
                return SchemaError(path, f"must contain at most {high} valid item(s)", "contains")
        return None

    def _object(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        if not isinstance(value, dict):
            return None
        most = schema.get("maxProperties")
        if _is_count(most) and len(value) > most:
            return SchemaError(path, f"must NOT have more than {most} properties", "maxProperties")
        least = schema.get("minProperties")
        if _is_count(least) and len(value) < least:
            return SchemaError(
                path, f"must NOT have fewer than {least} properties", "minProperties"
            )
        for name in schema.get("required") or ():
            if name not in value:
                return SchemaError(path, f"must have required property '{name}'", "required")
        dependencies = dict(schema.get("dependencies") or {})
        dependencies.update(schema.get("dependentRequired") or {})
        for trigger, needed in dependencies.items():
            if trigger not in value:
                continue
            if isinstance(needed, list):
                for name in needed:
                    if name not in value:
                        return SchemaError(
                            path,
                            f"must have property {name} when property {trigger} is present",
                            "dependencies",
                        )
            else:
                error = self.first_error(value, needed, path)
                if error is not None:
                    return error
        for trigger, sub in (schema.get("dependentSchemas") or {}).items():
            if trigger in value:
                error = self.first_error(value, sub, path)
                if error is not None:
                    return error
        names = schema.get("propertyNames")
        if names is not None:
            for name in value:
                if self.first_error(name, names, path) is not None:
                    return SchemaError(path, "property name must be valid", "propertyNames")
        properties = schema.get("properties") or {}
        patterns = schema.get("patternProperties") or {}
        additional = schema.get("additionalProperties", True)
        for name, element in value.items():
            where = _pointer(path, name)
            known = name in properties
            if known:
                error = self.first_error(element, properties[name], where)
                if error is not None:
                    return error
            for pattern, sub in patterns.items():
                if re.search(pattern, name):
                    known = True
                    error = self.first_error(element, sub, where)
                    if error is not None:
                        return error
            if not known:
                if additional is False:
                    return SchemaError(
                        path,
                        f"must NOT have additional properties ('{name}')",
                        "additionalProperties",
                    )
                error = self.first_error(element, additional, where)
                if error is not None:
                    return error
        return None

    def _combinators(self, value: Any, schema: dict[str, Any], path: str) -> SchemaError | None:
        for sub in schema.get("allOf") or ():
            error = self.first_error(value, sub, path)
            if error is not None:
                return error
        any_of = schema.get("anyOf")
        if any_of and all(self.first_error(value, sub, path) is not None for sub in any_of):
            return SchemaError(path, "must match a schema in anyOf", "anyOf")
        one_of = schema.get("oneOf")
        if one_of:
            passing = sum(1 for sub in one_of if self.first_error(value, sub, path) is None)
            if passing != 1:
                return SchemaError(path, "must match exactly one schema in oneOf", "oneOf")
        if "not" in schema and self.first_error(value, schema["not"], path) is None:
            return SchemaError(path, "must NOT be valid", "not")
        if "if" in schema:
            branch = "then" if self.first_error(value, schema["if"], path) is None else "else"
            if branch in schema and self.first_error(value, schema[branch], path) is not None:
                return SchemaError(path, f'must match "{branch}" schema', "if")
        return None


def validate_against_schema(value: Any, schema: Any) -> SchemaError | None:
    """The first way `value` breaks `schema` (assumed to pass `schema_problem`), or None."""
    try:
        return _SchemaValidator(schema).first_error(value, schema, "/")
    except RecursionError:
        return SchemaError("/", "is nested too deeply to validate", "depth")
    except (LookupError, re.error) as exc:
        return SchemaError("/", f"cannot be validated: {exc}", "schema")


def item_schema_problem(
    dataset: Dataset, input_value: Any, expected_output: Any, *, require_input: bool = False
) -> str | None:
    """Upstream's item validation message (without its "Dataset item validation failed: ")."""
    if require_input and input_value is None:
        return "Dataset item input cannot be null"
    problems: list[str] = []
    if dataset.input_schema is not None:
        error = validate_against_schema(input_value, dataset.input_schema)
        if error is not None:
            problems.append(f"Input validation failed: {error.describe()}")
    if dataset.expected_output_schema is not None:
        error = validate_against_schema(expected_output, dataset.expected_output_schema)
        if error is not None:
            problems.append(f"Expected output validation failed: {error.describe()}")
    return "; ".join(problems) or None


def sort_runs(runs: Sequence[DatasetRun]) -> list[DatasetRun]:
    """Upstream's run order: newest first, id breaking ties."""
    return sorted(sorted(runs, key=lambda r: r.id), key=lambda r: r.created_at, reverse=True)
