"""Storage ports of score configs, comments and annotation queues."""

from __future__ import annotations

from typing import Protocol


class ScoreConfigRepository(Protocol):
    """Score configs per project."""


class CommentRepository(Protocol):
    """Comments on traces, observations, sessions and prompts."""


class AnnotationQueueRepository(Protocol):
    """Annotation queues, their items and assignments."""
