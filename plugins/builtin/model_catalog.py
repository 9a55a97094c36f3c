"""The built-in model and price table (upstream `default-model-prices.json`).

Upstream upserts this file as project-less models at worker start; Fathom reads it directly.
The parsed list is cached for the process: the models are frozen, so sharing is safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from fathom.core.domain.pricing import (
    AnyCondition,
    Model,
    PricingTier,
    PricingTierAttributeCondition,
    PricingTierCondition,
)
from fathom.plugins.hookspecs import hookimpl

DATA_FILE = "default_model_prices.json"


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse_condition(raw: Mapping[str, Any]) -> AnyCondition:
    """A tier condition in Langfuse's JSON shape (usage or attribute condition)."""
    if "source" in raw:
        return PricingTierAttributeCondition(
            source=raw["source"],
            key=raw["key"],
            values=tuple(str(value) for value in raw.get("values", ())),
            operator=raw.get("operator", "in"),
        )
    return PricingTierCondition(
        usage_detail_pattern=raw["usageDetailPattern"],
        operator=raw["operator"],
        value=raw["value"] if isinstance(raw["value"], int) else float(raw["value"]),
        case_sensitive=bool(raw.get("caseSensitive", False)),
    )


def parse_tier(raw: Mapping[str, Any]) -> PricingTier:
    return PricingTier(
        id=raw["id"],
        name=raw["name"],
        is_default=bool(raw["isDefault"]),
        priority=int(raw["priority"]),
        conditions=tuple(parse_condition(c) for c in raw.get("conditions") or ()),
        prices=raw.get("prices") or {},
    )


def parse_model(raw: Mapping[str, Any], project_id: str | None = None) -> Model:
    """A model in the JSON shape of the price table and the public API (camelCase)."""
    return Model(
        id=raw["id"],
        project_id=project_id,
        model_name=raw["modelName"].strip(),
        match_pattern=raw["matchPattern"],
        start_date=_timestamp(raw.get("startDate")),
        unit=raw.get("unit"),
        tokenizer_id=raw.get("tokenizerId"),
        tokenizer_config=raw.get("tokenizerConfig"),
        pricing_tiers=tuple(parse_tier(t) for t in raw.get("pricingTiers") or ()),
        created_at=_timestamp(raw.get("createdAt")),
        updated_at=_timestamp(raw.get("updatedAt")),
    )


@cache
def _default_models() -> tuple[Model, ...]:
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    # parse_float=Decimal keeps prices exactly as written (2.5e-06 stays 0.0000025).
    entries = json.loads(text, parse_float=Decimal)
    return tuple(parse_model(entry) for entry in entries)


def load_default_models() -> list[Model]:
    """The built-in models, parsed once per process (a fresh list each call; the models
    themselves are frozen and shared)."""
    return list(_default_models())


@hookimpl
def fathom_model_definitions() -> list[Model]:
    return load_default_models()
