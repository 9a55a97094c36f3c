"""Storage port of datasets, items (with versions), runs and run items."""

from __future__ import annotations

from typing import Protocol


class DatasetRepository(Protocol):
    """Datasets and everything below them, per project."""
