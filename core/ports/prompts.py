"""Storage port of prompt management."""

from __future__ import annotations

from typing import Protocol


class PromptRepository(Protocol):
    """Prompt versions and their labels, per project."""
