"""Models, price tiers and the rules that turn usage into USD cost.

Mirrors Langfuse's model matching (`modelMatch.ts`), tier matching
(`pricing-tiers/matcher.ts`) and usage/cost inference (`IngestionService.getGenerationUsage`),
so that a generation ingested here gets the same `usage_details`, `cost_details` and
`total_cost` as upstream would give it.

Deliberate difference: a model's `startDate` counts. The API contract says a definition applies
"only to generations which are newer than this ISO date" and that the newest one whose start is
not after the generation's wins; upstream's matcher ignores the date and always takes the newest
definition, so a price announced in advance would reprice today's generations there.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

UsageDetails = dict[str, int]
CostDetails = dict[str, float]

# Costs are stored as Decimal(18, 12) upstream; anything beyond would fail the insert.
MAX_COST = 999_999.999_999_999_999


class PricingTierOperator(enum.StrEnum):
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NEQ = "neq"


class AttributeSource(enum.StrEnum):
    MODEL_PARAMETERS = "model_parameters"
    METADATA = "metadata"


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str, flags: int = 0) -> re.Pattern[str] | None:
    """Compiled regex, or None when Python cannot compile it (such a pattern never matches).

    Cached because match patterns and tier conditions are evaluated per generation.
    """
    try:
        return re.compile(pattern, flags)
    except (re.error, TypeError, ValueError, OverflowError):
        return None


def _to_decimal(value: Decimal | float | int | str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # Via repr so 2.5e-06 becomes Decimal("0.0000025"), as decimal.js does, not the
        # binary expansion Decimal(float) would give.
        return Decimal(repr(value))
    return Decimal(value)


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes are taken as UTC so that comparisons never raise.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class PricingTierCondition:
    """Usage condition: the sum of every usage key matching the regex, compared to `value`."""

    usage_detail_pattern: str
    operator: PricingTierOperator | str
    value: float
    case_sensitive: bool = False

    def evaluate(self, usage_details: Mapping[str, float]) -> bool:
        regex = compile_pattern(
            self.usage_detail_pattern, 0 if self.case_sensitive else re.IGNORECASE
        )
        if regex is None:
            return False  # upstream fails safe: a broken condition never matches
        total: float = 0
        for key, units in usage_details.items():
            if units and regex.search(key):
                total += units
        match self.operator:
            case "gt":
                return total > self.value
            case "gte":
                return total >= self.value
            case "lt":
                return total < self.value
            case "lte":
                return total <= self.value
            case "eq":
                return total == self.value
            case "neq":
                return total != self.value
        return False


@dataclass(frozen=True, slots=True)
class PricingTierAttributeCondition:
    """Attribute condition: a top-level model-parameter or metadata key equals one of `values`."""

    source: AttributeSource | str
    key: str
    values: tuple[str, ...]
    operator: str = "in"

    def evaluate(
        self,
        model_parameters: Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
    ) -> bool:
        attributes = model_parameters if self.source == "model_parameters" else metadata
        if not attributes or self.key not in attributes:
            return False
        return _attribute_text(attributes[self.key]) in self.values


def _attribute_text(value: Any) -> str:
    # Upstream compares the JS string form of the value (attributes are Record<string, string>).
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


AnyCondition = PricingTierCondition | PricingTierAttributeCondition


@dataclass(frozen=True, slots=True)
class PricingTier:
    id: str
    name: str
    is_default: bool
    priority: int
    conditions: tuple[AnyCondition, ...] = ()
    # USD per unit by usage type; floats are converted to Decimal on construction.
    prices: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(
            self, "prices", {key: _to_decimal(price) for key, price in self.prices.items()}
        )

    def matches(
        self,
        usage_details: Mapping[str, float],
        model_parameters: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """All conditions hold (AND). A tier without conditions never matches on its own."""
        if not self.conditions:
            return False
        for condition in self.conditions:
            if isinstance(condition, PricingTierCondition):
                if not condition.evaluate(usage_details):
                    return False
            elif not condition.evaluate(model_parameters, metadata):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    model_name: str
    match_pattern: str
    project_id: str | None = None  # None for the built-in (Langfuse-managed) models
    start_date: datetime | None = None
    unit: str | None = None
    tokenizer_id: str | None = None
    tokenizer_config: Mapping[str, Any] | None = None
    pricing_tiers: tuple[PricingTier, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pricing_tiers", tuple(self.pricing_tiers))
        if self.start_date is not None:
            object.__setattr__(self, "start_date", _as_utc(self.start_date))

    @property
    def is_langfuse_managed(self) -> bool:
        return self.project_id is None

    @property
    def default_tier(self) -> PricingTier | None:
        for tier in self.pricing_tiers:
            if tier.is_default:
                return tier
        return None

    @property
    def prices(self) -> Mapping[str, Decimal]:
        """The default tier's prices: the API's legacy flat `prices`/`inputPrice`/… fields."""
        tier = self.default_tier
        return tier.prices if tier is not None else {}

    def matches_name(self, model_name: str) -> bool:
        # Postgres `name ~ match_pattern` is an unanchored search; the patterns carry their own
        # anchors and `(?i)` flag, which Python's `re` understands the same way.
        regex = compile_pattern(self.match_pattern)
        return regex is not None and regex.search(model_name) is not None


# --- model matching ---------------------------------------------------------------------------


def _candidate_order(model: Model) -> tuple[bool, bool, float]:
    # ORDER BY project_id ASC (Postgres puts NULL, i.e. built-ins, last), start_date DESC NULLS LAST
    start = model.start_date
    return (model.project_id is None, start is None, -start.timestamp() if start else 0.0)


def _effective(model: Model, at: datetime | None) -> bool:
    return at is None or model.start_date is None or model.start_date <= at


def match_model(
    models: Iterable[Model],
    model_name: str | None,
    at: datetime | None,
    project_id: str | None,
) -> Model | None:
    """The model definition that prices `model_name` for a generation starting at `at`.

    Candidates are the project's own models and the built-ins whose pattern matches; a
    project's model wins over a built-in, then the newest `start_date` not after `at`
    (models without a start date come last). `at=None` ignores start dates.
    Not memoised: use `ModelMatcher` on the hot path.
    """
    if not model_name:
        return None
    when = _as_utc(at) if at is not None else None
    candidates = [
        model
        for model in models
        if (model.project_id is None or model.project_id == project_id)
        and _effective(model, when)
        and model.matches_name(model_name)
    ]
    if not candidates:
        return None
    return min(candidates, key=_candidate_order)


class ModelMatcher:
    """Precompiled, memoising `match_model` over a fixed list of models.

    The memo maps (project, model name) to the ordered candidates, independent of time, so
    date-effective models stay correct while a repeated name costs one dict lookup. Build a
    new matcher when the model list changes (custom model created or deleted).
    """

    __slots__ = ("_builtin", "_by_project", "_memo", "_max_entries", "_models")

    def __init__(self, models: Iterable[Model], *, max_entries: int = 10_000) -> None:
        self._models: tuple[Model, ...] = tuple(models)
        self._max_entries = max_entries
        self._memo: dict[tuple[str | None, str], tuple[Model, ...]] = {}
        ordered = sorted(self._models, key=_candidate_order)  # sorted() is stable
        compiled = [(model, compile_pattern(model.match_pattern)) for model in ordered]
        self._builtin = [(m, rx) for m, rx in compiled if m.project_id is None and rx is not None]
        self._by_project: dict[str, list[tuple[Model, re.Pattern[str]]]] = {}
        for model, regex in compiled:
            if model.project_id is not None and regex is not None:
                self._by_project.setdefault(model.project_id, []).append((model, regex))

    @property
    def models(self) -> tuple[Model, ...]:
        return self._models

    def candidates(self, model_name: str, project_id: str | None = None) -> tuple[Model, ...]:
        """Every model whose pattern matches, best first, regardless of start date."""
        key = (project_id, model_name)
        found = self._memo.get(key)
        if found is not None:
            return found
        own = self._by_project.get(project_id, ()) if project_id is not None else ()
        found = tuple(model for model, rx in own if rx.search(model_name)) + tuple(
            model for model, rx in self._builtin if rx.search(model_name)
        )
        if len(self._memo) >= self._max_entries:
            # Model names come from clients; bound the memo by evicting the oldest entry.
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = found
        return found

    def match(
        self,
        model_name: str | None,
        at: datetime | None = None,
        project_id: str | None = None,
    ) -> Model | None:
        if not model_name:
            return None
        when = _as_utc(at) if at is not None else None
        for model in self.candidates(model_name, project_id):
            if _effective(model, when):
                return model
        return None

    def clear(self) -> None:
        self._memo.clear()


# --- tiers and costs --------------------------------------------------------------------------


def select_pricing_tier(
    model: Model,
    usage_details: Mapping[str, float] | None,
    *,
    model_parameters: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PricingTier | None:
    """Non-default tiers by ascending priority, the first whose conditions all hold, else the
    default tier. None when there is no usage to price (or no default tier)."""
    if not usage_details or not model.pricing_tiers:
        return None
    conditional = sorted(
        (tier for tier in model.pricing_tiers if not tier.is_default),
        key=lambda tier: tier.priority,
    )
    for tier in conditional:
        if tier.matches(usage_details, model_parameters, metadata):
            return tier
    return model.default_tier


def clamp_cost(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(-MAX_COST, min(MAX_COST, value))


def _units_decimal(units: float) -> Decimal:
    if isinstance(units, float):
        return Decimal(repr(units))
    return Decimal(units)


class CostResult(NamedTuple):
    cost_details: CostDetails
    total_cost: float | None
    tier_name: str | None


def calculate_cost(
    model: Model | None,
    usage_details: Mapping[str, float] | None,
    *,
    model_parameters: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    tier: PricingTier | None = None,
) -> CostResult:
    """Cost per usage key that has a price (units × price), plus `total`.

    `total` is the priced `total` usage when the tier has a `total` price, otherwise the sum of
    the other costs. Keys without a price get no cost; no priced key at all gives no total.
    """
    if model is None or not usage_details:
        return CostResult({}, None, None)
    if tier is None:
        tier = select_pricing_tier(
            model, usage_details, model_parameters=model_parameters, metadata=metadata
        )
    if tier is None:
        return CostResult({}, None, None)
    prices = tier.prices
    cost_details: CostDetails = {}
    for key, units in usage_details.items():
        price = prices.get(key)
        if price is None or units is None:
            continue
        try:
            cost = float(price * _units_decimal(units))
        except (InvalidOperation, ValueError, TypeError):
            continue
        cost_details[key] = clamp_cost(cost)
    if not cost_details:
        return CostResult(cost_details, None, tier.name)
    total = cost_details.get("total")
    if total is None:
        total = 0.0
        for cost in cost_details.values():
            total += cost  # left-to-right float sum, as upstream's reduce does
        total = clamp_cost(total)
        cost_details["total"] = total
    return CostResult(cost_details, total, tier.name)


def _clean_usage(provided: Mapping[str, Any] | None) -> UsageDetails:
    # Upstream coerces with Number() and keeps non-negative, non-NaN values.
    cleaned: UsageDetails = {}
    for key, value in (provided or {}).items():
        if type(value) is int:  # what nearly every client sends
            if value >= 0:
                cleaned[key] = value
            continue
        if value is None or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isnan(number) or number < 0 or math.isinf(number):
            continue
        cleaned[key] = int(number) if number.is_integer() else number  # type: ignore[assignment]
    return cleaned


def derive_usage_details(
    provided_usage: Mapping[str, Any] | None,
    tokenized_usage: Mapping[str, int] | None = None,
) -> UsageDetails:
    """The usage to price: the provided usage with a derived `total` (sum of every key) when it
    has none, or, when nothing was provided, the tokenizer's counts."""
    usage = _clean_usage(provided_usage)
    if not usage:
        return dict(tokenized_usage) if tokenized_usage else {}
    if "total" not in usage:
        total = 0
        for units in usage.values():
            total += units
        usage["total"] = total
    return usage


def needs_tokenization(
    model: Model | None, provided_usage: Mapping[str, Any] | None, level: str | None
) -> bool:
    """Upstream counts tokens itself only for a matched model, no provided usage, level≠ERROR."""
    return model is not None and not _clean_usage(provided_usage) and level != "ERROR"


def provided_cost_result(provided_cost: Mapping[str, Any] | None) -> CostResult | None:
    """Ingested costs win over calculated ones: used alone, with `total` as given, or
    input + output when only those were given. None when no cost was provided."""
    costs: CostDetails = {
        key: value for key, value in (provided_cost or {}).items() if value is not None
    }
    if not costs:
        return None
    total = costs.get("total")
    if total is None and costs.keys() <= {"input", "output"}:
        total = costs.get("input", 0) + costs.get("output", 0)
        costs["total"] = total
    return CostResult(costs, total, None)


class PricedUsage(NamedTuple):
    usage_details: UsageDetails
    cost_details: CostDetails
    total_cost: float | None
    tier_name: str | None


def infer_usage_and_cost(
    provided_usage: Mapping[str, Any] | None,
    provided_cost: Mapping[str, Any] | None,
    model: Model | None,
    *,
    tokenized_usage: Mapping[str, int] | None = None,
    model_parameters: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PricedUsage:
    """Final usage and cost of a generation, with upstream's precedence.

    `tokenized_usage` is what the token counter found when `needs_tokenization` said so; it is
    used only when no usage was provided. The tier is matched on the final usage even when the
    costs were ingested, so the observation still records which tier applied.
    """
    usage = derive_usage_details(provided_usage, tokenized_usage)
    tier = (
        select_pricing_tier(model, usage, model_parameters=model_parameters, metadata=metadata)
        if model is not None
        else None
    )
    tier_name = tier.name if tier is not None else None
    provided = provided_cost_result(provided_cost)
    if provided is not None:
        return PricedUsage(usage, provided.cost_details, provided.total_cost, tier_name)
    if tier is None:
        return PricedUsage(usage, {}, None, None)
    costs = calculate_cost(model, usage, tier=tier)
    return PricedUsage(usage, costs.cost_details, costs.total_cost, tier_name)


def usage_exceeds_total(usage_details: Mapping[str, float]) -> bool:
    """Non-total buckets add up to more than `total`: instrumentors double-counting cache
    tokens. Upstream only records a metric for this; nothing is corrected."""
    total = usage_details.get("total")
    if total is None:
        return False
    return sum(v for k, v in usage_details.items() if k != "total") > total
