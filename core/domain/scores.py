"""Scores and score configs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fathom.core.domain.tracing import DEFAULT_ENVIRONMENT


class ScoreDataType(enum.StrEnum):
    NUMERIC = "NUMERIC"
    CATEGORICAL = "CATEGORICAL"
    BOOLEAN = "BOOLEAN"
    CORRECTION = "CORRECTION"
    TEXT = "TEXT"


class ScoreSource(enum.StrEnum):
    API = "API"
    EVAL = "EVAL"
    ANNOTATION = "ANNOTATION"


@dataclass(slots=True)
class Score:
    id: str
    project_id: str
    name: str
    timestamp: datetime
    data_type: ScoreDataType
    value: float | None = None
    string_value: str | None = None
    source: ScoreSource = ScoreSource.API
    trace_id: str | None = None
    observation_id: str | None = None
    session_id: str | None = None
    dataset_run_id: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    config_id: str | None = None
    queue_id: str | None = None
    author_user_id: str | None = None
    execution_trace_id: str | None = None
    environment: str = DEFAULT_ENVIRONMENT
    created_at: datetime | None = None
    updated_at: datetime | None = None
