"""Score configs: the schema a score name follows, and how a score is checked against it.

Rules follow upstream (`packages/shared/src/features/scoreConfigs`, the public-API body schemas
and `validateAndInflateScore`):

* a name is 1-35 characters of letters, digits, spaces and `_ . ( ) -`;
* NUMERIC may carry a range (max strictly above min), never categories;
* CATEGORICAL carries `{label, value}` categories with unique labels and unique values,
  never a range;
* BOOLEAN's categories are always exactly True=1, False=0 (the server fills them in);
* TEXT carries neither a range nor categories.

A score that names a config takes the config's name, must not declare another data type, is
refused while the config is archived, and its value must fit: within the (inclusive) range, one
of the category labels, 0 or 1, or a text of 1-500 characters. The stored score is then
"inflated" from the config: its data type, for categorical scores the numeric value of the
chosen category, for boolean scores the "True"/"False" string value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fathom.core.domain.scores import ScoreDataType

CONFIG_DATA_TYPES: Final = (
    ScoreDataType.NUMERIC,
    ScoreDataType.CATEGORICAL,
    ScoreDataType.BOOLEAN,
    ScoreDataType.TEXT,
)
MAX_NAME_LENGTH: Final = 35
MAX_TEXT_VALUE_LENGTH: Final = 500
# `\w` is Unicode-aware in Python like upstream's regex: letters and digits of any script, `_`.
_NAME_PATTERN: Final = re.compile(r"[\w .()\-]+")

CONFIG_NOT_FOUND: Final = "The configId you provided does not match a valid config in this project"
ARCHIVED: Final = (
    "Config is archived and cannot be used to create new scores. Please restore the config first."
)
AGAINST_CONFIG: Final = "Ingested score body not valid against provided config"
CATEGORIES_SHAPE: Final = (
    "Category must be an array of objects with label value pairs, where labels and values are "
    "unique."
)
RANGE_ORDER: Final = "Maximum value must be greater than Minimum value"


@dataclass(frozen=True, slots=True)
class ConfigCategory:
    label: str
    value: float


BOOLEAN_CATEGORIES: Final = (ConfigCategory("True", 1.0), ConfigCategory("False", 0.0))


@dataclass(slots=True)
class ScoreConfig:
    id: str
    project_id: str
    name: str
    data_type: ScoreDataType
    created_at: datetime
    updated_at: datetime
    is_archived: bool = False
    min_value: float | None = None
    max_value: float | None = None
    categories: tuple[ConfigCategory, ...] | None = None
    description: str | None = None


def js_number(value: float) -> str:
    """A number as JavaScript's template strings print it (1 not 1.0), for upstream's messages."""
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


# --- the config itself ---------------------------------------------------------------------


def name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return "name must be a string"
    if not name:
        return "name must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"name must be at most {MAX_NAME_LENGTH} characters"
    if _NAME_PATTERN.fullmatch(name) is None:
        return (
            "name may only contain letters, numbers, underscores, spaces, periods, parentheses "
            "and hyphens"
        )
    return None


def parse_categories(raw: Any) -> tuple[tuple[ConfigCategory, ...] | None, str | None]:
    """JSON categories → (categories, None), or (None, the problem) as upstream words it."""
    if not isinstance(raw, list):
        return None, CATEGORIES_SHAPE
    categories: list[ConfigCategory] = []
    for item in raw:
        if not isinstance(item, Mapping):
            return None, CATEGORIES_SHAPE
        label, value = item.get("label"), item.get("value")
        if not isinstance(label, str) or not label:
            return None, CATEGORIES_SHAPE
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, CATEGORIES_SHAPE
        if not math.isfinite(value):
            return None, CATEGORIES_SHAPE
        categories.append(ConfigCategory(label, float(value)))
    return tuple(categories), None


def categories_problem(categories: Iterable[ConfigCategory]) -> str | None:
    labels: set[str] = set()
    values: set[float] = set()
    for category in categories:
        if category.label in labels:
            return f"Duplicate category label: {category.label}, category labels must be unique"
        labels.add(category.label)
        if category.value in values:
            return (
                f"Duplicate category value: {js_number(category.value)}, category values must "
                "be unique"
            )
        values.add(category.value)
    return None


def config_problems(config: ScoreConfig) -> list[str]:
    """Every broken invariant of a config about to be stored (empty when it is valid)."""
    problems: list[str] = []
    name = name_problem(config.name)
    if name is not None:
        problems.append(name)
    data_type = config.data_type
    has_range = config.min_value is not None or config.max_value is not None
    if data_type not in CONFIG_DATA_TYPES:
        problems.append(f"dataType must be one of {', '.join(CONFIG_DATA_TYPES)}")
    elif data_type is ScoreDataType.NUMERIC:
        if config.categories is not None:
            problems.append("categories can only be set on CATEGORICAL score configs")
        if (
            config.min_value is not None
            and config.max_value is not None
            and config.max_value <= config.min_value
        ):
            problems.append(RANGE_ORDER)
    elif data_type is ScoreDataType.CATEGORICAL:
        if has_range:
            problems.append("minValue and maxValue can only be set on NUMERIC score configs")
        if not config.categories:
            problems.append("Categorical score configs need at least one category")
        else:
            duplicate = categories_problem(config.categories)
            if duplicate is not None:
                problems.append(duplicate)
    elif data_type is ScoreDataType.BOOLEAN:
        if has_range:
            problems.append("minValue and maxValue can only be set on NUMERIC score configs")
        if config.categories != BOOLEAN_CATEGORIES:
            problems.append(
                "Boolean score configs always have the categories True (1) and False (0)"
            )
    else:  # TEXT
        if has_range:
            problems.append("minValue and maxValue can only be set on NUMERIC score configs")
        if config.categories is not None:
            problems.append("categories can only be set on CATEGORICAL score configs")
    return problems


# --- a score against its config ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreInput:
    """What of a score request the config judges: its raw value and the declared data type.

    `data_type` is None when the client left it to inference; a declared type must equal
    the config's, an inferred one does not count (upstream's rule).
    """

    value: float | str | None
    data_type: ScoreDataType | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ScoreInput:
        raw = body.get("value")
        value: float | str | None
        if isinstance(raw, str):
            value = raw
        elif isinstance(raw, (bool, int, float)):
            # SDKs send booleans as JSON true/false; the parser already treats them as 1/0.
            value = float(raw)
        else:
            value = None
        declared = body.get("dataType")
        data_type = (
            ScoreDataType(declared)
            if isinstance(declared, str) and declared in ScoreDataType.__members__
            else None
        )
        return cls(value, data_type)


@dataclass(frozen=True, slots=True)
class InflatedScore:
    """A valid score as the config makes it: the fields to store."""

    name: str
    data_type: ScoreDataType
    value: float | None
    string_value: str | None


def _kind(value: float | str | None) -> str:
    if isinstance(value, str):
        return "string"
    return "number" if value is not None else "null"


def _value_problem(value: float | str | None, config: ScoreConfig) -> str | None:
    data_type = config.data_type
    if data_type is ScoreDataType.NUMERIC:
        if not isinstance(value, float):
            return f"Value must be a number for NUMERIC score configs, received {_kind(value)}"
        if config.max_value is not None and value > config.max_value:
            return f"Value exceeds maximum value of {js_number(config.max_value)} defined in config"
        if config.min_value is not None and value < config.min_value:
            return (
                f"Value is below minimum value of {js_number(config.min_value)} defined in config"
            )
        return None
    if data_type is ScoreDataType.CATEGORICAL:
        if not isinstance(value, str):
            return (
                "Value must be a string (a category label) for CATEGORICAL score configs, "
                f"received {_kind(value)}"
            )
        if not any(category.label == value for category in config.categories or ()):
            return f"Value {value} does not map to a valid category. Pass a valid category value."
        return None
    if data_type is ScoreDataType.BOOLEAN:
        if not isinstance(value, float) or value not in (0.0, 1.0):
            return "Value must be either 0 or 1"
        return None
    if data_type is ScoreDataType.TEXT:
        if not isinstance(value, str):
            return f"Value must be a string for TEXT score configs, received {_kind(value)}"
        if not 1 <= len(value) <= MAX_TEXT_VALUE_LENGTH:
            return f"Text score values must be between 1 and {MAX_TEXT_VALUE_LENGTH} characters"
        return None
    return f"Score configs of data type {data_type} cannot be used for scores"


def validate_score_against_config(score: ScoreInput, config: ScoreConfig) -> list[str]:
    """Why `score` may not be stored under `config` (empty when it may), in upstream's words.

    The name is not judged: the config's name replaces whatever the score carried.
    """
    if score.data_type is not None and score.data_type is not config.data_type:
        # The value cannot be judged against a type the client did not mean.
        return [
            f"Data type mismatch based on config: expected {config.data_type}, "
            f"got {score.data_type}"
        ]
    problems: list[str] = []
    if config.is_archived:
        problems.append(ARCHIVED)
    value_problem = _value_problem(score.value, config)
    if value_problem is not None:
        # Upstream prefixes the zod issues of the value check; their path is empty here.
        problems.append(f"{AGAINST_CONFIG}: {value_problem}")
    return problems


def inflate_score(score: ScoreInput, config: ScoreConfig) -> InflatedScore:
    """The stored fields of a score that passed `validate_score_against_config`."""
    data_type = config.data_type
    value = score.value
    if data_type is ScoreDataType.CATEGORICAL:
        assert isinstance(value, str)
        number = next(
            (category.value for category in config.categories or () if category.label == value),
            0.0,
        )
        return InflatedScore(config.name, data_type, number, value)
    if data_type is ScoreDataType.BOOLEAN:
        assert isinstance(value, float)
        return InflatedScore(config.name, data_type, value, "True" if value == 1.0 else "False")
    if data_type is ScoreDataType.TEXT:
        assert isinstance(value, str)
        return InflatedScore(config.name, data_type, None, value)
    assert isinstance(value, float)
    return InflatedScore(config.name, data_type, value, None)
