"""Traces, observations and sessions: the nouns of observability.

Input, output and metadata values are plain JSON-compatible Python values; storage
adapters decide how to serialise them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ObservationType(enum.StrEnum):
    SPAN = "SPAN"
    GENERATION = "GENERATION"
    EVENT = "EVENT"
    AGENT = "AGENT"
    TOOL = "TOOL"
    CHAIN = "CHAIN"
    RETRIEVER = "RETRIEVER"
    EVALUATOR = "EVALUATOR"
    EMBEDDING = "EMBEDDING"
    GUARDRAIL = "GUARDRAIL"


# Types that carry model, usage and cost like a generation does.
GENERATION_LIKE = frozenset(
    {
        ObservationType.GENERATION,
        ObservationType.AGENT,
        ObservationType.TOOL,
        ObservationType.CHAIN,
        ObservationType.RETRIEVER,
        ObservationType.EVALUATOR,
        ObservationType.EMBEDDING,
        ObservationType.GUARDRAIL,
    }
)


class Level(enum.StrEnum):
    DEBUG = "DEBUG"
    DEFAULT = "DEFAULT"
    WARNING = "WARNING"
    ERROR = "ERROR"


LEVEL_ALIASES = {
    "TRACE": Level.DEBUG,
    "VERBOSE": Level.DEBUG,
    "INFO": Level.DEFAULT,
    "LOG": Level.DEFAULT,
    "NOTICE": Level.DEFAULT,
    "OK": Level.DEFAULT,
    "SUCCESS": Level.DEFAULT,
    "WARN": Level.WARNING,
    "FATAL": Level.ERROR,
    "CRITICAL": Level.ERROR,
}

DEFAULT_ENVIRONMENT = "default"
_ENVIRONMENT_RE = re.compile(r"^[a-z0-9_-]+$")
_RESERVED_PREFIXES = ("langfuse-", "langfuse_", "langfuse")


def normalize_environment(value: str | None) -> str:
    """Langfuse's rule: lowercased, `langfuse` prefixes stripped, at most 40 chars of [a-z0-9_-]."""
    if not value:
        return DEFAULT_ENVIRONMENT
    env = value.lower()
    stripped = True
    while stripped:
        stripped = False
        for prefix in _RESERVED_PREFIXES:
            if env.startswith(prefix):
                env = env[len(prefix) :]
                stripped = True
                break
    env = env[:40]
    return env if env and _ENVIRONMENT_RE.match(env) else DEFAULT_ENVIRONMENT


# Every observation names its level; an Enum lookup by value costs ~1.5 µs, a dict ~50 ns.
_LEVELS_BY_NAME: dict[str, Level] = {level.value: level for level in Level} | LEVEL_ALIASES


def parse_level(value: str | None) -> Level | None:
    if value is None:
        return None
    level = _LEVELS_BY_NAME.get(value)  # type: ignore[arg-type]
    if level is not None:
        return level
    return _LEVELS_BY_NAME.get(str(value).upper())


@dataclass(slots=True)
class Trace:
    id: str
    project_id: str
    timestamp: datetime
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    release: str | None = None
    version: str | None = None
    input: Any = None
    output: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    public: bool = False
    bookmarked: bool = False
    environment: str = DEFAULT_ENVIRONMENT
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class Observation:
    id: str
    project_id: str
    trace_id: str
    type: ObservationType
    start_time: datetime
    name: str | None = None
    end_time: datetime | None = None
    completion_start_time: datetime | None = None
    parent_observation_id: str | None = None
    level: Level = Level.DEFAULT
    status_message: str | None = None
    version: str | None = None
    input: Any = None
    output: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    environment: str = DEFAULT_ENVIRONMENT
    model: str | None = None
    internal_model_id: str | None = None
    model_parameters: dict[str, Any] | None = None
    provided_usage_details: dict[str, int] = field(default_factory=dict)
    usage_details: dict[str, int] = field(default_factory=dict)
    provided_cost_details: dict[str, float] = field(default_factory=dict)
    cost_details: dict[str, float] = field(default_factory=dict)
    total_cost: float | None = None
    usage_pricing_tier_name: str | None = None
    prompt_id: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def latency_seconds(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    @property
    def time_to_first_token_seconds(self) -> float | None:
        if self.completion_start_time is None:
            return None
        return (self.completion_start_time - self.start_time).total_seconds()


@dataclass(slots=True)
class Session:
    id: str
    project_id: str
    created_at: datetime
    environment: str = DEFAULT_ENVIRONMENT
