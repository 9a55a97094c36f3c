"""Fixtures the unit suites share: the built-in model price catalog and its matcher."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fathom.core.domain.pricing import Model, ModelMatcher
from fathom.plugins.builtin.model_catalog import load_default_models

# When the catalog's models are looked up: after every start date it holds.
CATALOG_NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def models() -> list[Model]:
    """The built-in catalog, loaded once: parsing it takes a while and tests only read it."""
    return load_default_models()


@pytest.fixture(scope="session")
def matcher(models: list[Model]) -> ModelMatcher:
    return ModelMatcher(models)


def catalog_model(matcher: ModelMatcher, name: str) -> Model:
    """The built-in model `name` matches now; the test fails if none does."""
    model = matcher.match(name, CATALOG_NOW)
    assert model is not None, name
    return model
