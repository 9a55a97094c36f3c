"""Project-specific models and prices (`/api/public/models`) and the catalog pricing reads.

Validation follows upstream's `PostModelsV1Body` and `validatePricingTiers`: either flat prices
or pricing tiers, exactly one default tier (priority 0, no conditions), unique tier names and
priorities, the same price keys in every tier. Built-in (Langfuse-managed) models are listed
and readable next to a project's own, but never stored and never deletable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.pricing import (
    AnyCondition,
    AttributeSource,
    Model,
    PricingTier,
    PricingTierAttributeCondition,
    PricingTierCondition,
    PricingTierOperator,
)
from fathom.core.ports.cache import MODELS, InvalidationBus, cache_key
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock, IdGenerator
from fathom.core.ports.telemetry import Page

log = logging.getLogger(__name__)

UNITS: Final = ("TOKENS", "CHARACTERS", "MILLISECONDS", "SECONDS", "REQUESTS", "IMAGES")
TOKENIZERS: Final = ("openai", "claude")
OPERATORS: Final = tuple(operator.value for operator in PricingTierOperator)
SOURCES: Final = tuple(source.value for source in AttributeSource)
MAX_CONDITION_PATTERN = 200
MAX_TIER_NAME = 100
MAX_PRIORITY = 999
MAX_ATTRIBUTE_KEY = 200
# safe-regex's default: more repetitions than this in one pattern counts as unsafe.
MAX_REPETITIONS = 25
FLAT_TIER_NAME = "Standard"

MODEL_NOT_FOUND = "No model with this id found."
BUILTIN_NOT_DELETABLE = (
    "No model with this id found. Note: You cannot delete built-in models, override them with "
    "a model with the same name."
)


# --- JSON shape of tiers (API responses and the record store share it) ------------------------


def condition_to_json(condition: AnyCondition) -> dict[str, Any]:
    if isinstance(condition, PricingTierAttributeCondition):
        return {
            "source": str(condition.source),
            "key": condition.key,
            "operator": condition.operator,
            "values": list(condition.values),
        }
    return {
        "usageDetailPattern": condition.usage_detail_pattern,
        "operator": str(condition.operator),
        "value": condition.value,
        "caseSensitive": condition.case_sensitive,
    }


def condition_from_json(raw: Mapping[str, Any]) -> AnyCondition:
    """A condition already known to be valid (stored, or checked by `CreateModel`)."""
    if "source" in raw:
        return PricingTierAttributeCondition(
            source=AttributeSource(raw["source"]),
            key=raw["key"],
            values=tuple(str(value) for value in raw["values"]),
            operator=raw.get("operator", "in"),
        )
    return PricingTierCondition(
        usage_detail_pattern=raw["usageDetailPattern"],
        operator=PricingTierOperator(raw["operator"]),
        value=raw["value"],
        case_sensitive=bool(raw.get("caseSensitive", False)),
    )


def tier_from_json(raw: Mapping[str, Any]) -> PricingTier:
    """Prices may be numbers or decimal strings (the record store keeps them exact)."""
    return PricingTier(
        id=raw["id"],
        name=raw["name"],
        is_default=bool(raw["isDefault"]),
        priority=int(raw["priority"]),
        conditions=tuple(condition_from_json(c) for c in raw.get("conditions") or ()),
        prices={key: Decimal(str(price)) for key, price in (raw.get("prices") or {}).items()},
    )


# --- regex safety ------------------------------------------------------------------------------


def _repetition_depth(pattern: str, *, unbounded_only: bool) -> tuple[int, int]:
    """(deepest nesting of repetitions, number of repetitions) in a compilable pattern.

    Uses the standard library's own regex parser (private, but shipped with every CPython);
    if it ever moves, the safety check is skipped rather than rejecting every pattern.
    """
    try:
        from re import _constants as constants  # type: ignore[attr-defined]
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other interpreters
        return 0, 0
    repeats = {constants.MAX_REPEAT, constants.MIN_REPEAT}
    repeats.add(getattr(constants, "POSSESSIVE_REPEAT", constants.MAX_REPEAT))
    count = 0

    def children(value: Any) -> list[Any]:
        if isinstance(value, parser.SubPattern):
            return [value]
        if isinstance(value, (list, tuple)):
            return [child for item in value for child in children(item)]
        return []

    def walk(node: Any, depth: int) -> int:
        nonlocal count
        deepest = depth
        for op, av in node:
            if op in repeats:
                _low, high, sub = av
                counted = int(not unbounded_only or high == constants.MAXREPEAT)
                count += counted
                deepest = max(deepest, walk(sub, depth + counted))
            else:
                for child in children(av):
                    deepest = max(deepest, walk(child, depth))
        return deepest

    try:
        return walk(parser.parse(pattern), 0), count
    except Exception:  # unparsable patterns were already rejected by re.compile
        return 0, 0


def _compile_error(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, ValueError) as exc:
        return str(exc)
    return None


def _check_match_pattern(pattern: str) -> None:
    error = _compile_error(pattern)
    if error is not None:
        raise InvalidInput(f"matchPattern is not a valid regex pattern: {error}")
    # Upstream lets Postgres evaluate patterns; Python's engine backtracks, so a nested
    # unbounded quantifier such as `(a+)+` could stall the worker on a crafted model name.
    depth, _ = _repetition_depth(pattern, unbounded_only=True)
    if depth > 1:
        raise InvalidInput(
            "matchPattern may cause catastrophic backtracking (nested unbounded quantifiers). "
            "Please simplify your regex."
        )


def _usage_pattern_problem(pattern: str) -> str | None:
    """Upstream's `validateRegexPattern` (length, syntax, safe-regex) as one message."""
    if len(pattern) > MAX_CONDITION_PATTERN:
        return f"Pattern exceeds maximum length of {MAX_CONDITION_PATTERN} characters"
    if not pattern:
        return "Pattern cannot be empty"
    error = _compile_error(pattern)
    if error is not None:
        return f"Invalid regex syntax: {error}"
    depth, count = _repetition_depth(pattern, unbounded_only=False)
    if depth > 1 or count > MAX_REPETITIONS:
        return "Pattern may cause catastrophic backtracking. Please simplify your regex."
    return None


# --- request validation ------------------------------------------------------------------------


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid request data: {problem}")


def _optional_price(body: Mapping[str, Any], key: str) -> float | int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(f"{key} must be a number")
    if value < 0:
        raise _invalid(f"{key} must be non-negative")
    return value


def _start_date(value: Any) -> datetime | None:
    """Upstream coerces with `new Date(value)`: ISO text or epoch milliseconds, kept in UTC
    (a timestamptz column), so the response always reads `…Z`."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise _invalid(f"startDate is out of range, got {value!r}") from None
    if not isinstance(value, str):
        raise _invalid("startDate must be an ISO 8601 datetime string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"startDate must be an ISO 8601 datetime, got {value!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _required_string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise _invalid(f"{key} is required and must be a string")
    if not value.strip():
        raise _invalid(f"{key} must not be empty")
    return value


def _condition(raw: Any, where: str) -> AnyCondition:
    if not isinstance(raw, Mapping):
        raise _invalid(f"{where}: a condition must be an object")
    if "source" in raw:
        source, key, operator, values = (
            raw.get(k) for k in ("source", "key", "operator", "values")
        )
        if source not in SOURCES:
            raise _invalid(f"{where}: source must be one of {list(SOURCES)}")
        if not isinstance(key, str) or not key or len(key) > MAX_ATTRIBUTE_KEY:
            raise _invalid(f"{where}: key must be a string of 1 to {MAX_ATTRIBUTE_KEY} characters")
        if operator != "in":
            raise _invalid(f"{where}: operator of an attribute condition must be 'in'")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise _invalid(f"{where}: values must be a non-empty array of non-empty strings")
        return PricingTierAttributeCondition(
            source=AttributeSource(source), key=key, values=tuple(values)
        )
    pattern, operator, value = (raw.get(k) for k in ("usageDetailPattern", "operator", "value"))
    case_sensitive = raw.get("caseSensitive", False)
    if not isinstance(pattern, str):
        raise _invalid(f"{where}: usageDetailPattern must be a string")
    if operator not in OPERATORS:
        raise _invalid(f"{where}: operator must be one of {list(OPERATORS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(f"{where}: value must be a number")
    if value < 0:
        raise _invalid(f"{where}: value must be non-negative")
    if not isinstance(case_sensitive, bool):
        raise _invalid(f"{where}: caseSensitive must be a boolean")
    return PricingTierCondition(
        usage_detail_pattern=pattern,
        operator=PricingTierOperator(operator),
        value=value,
        case_sensitive=case_sensitive,
    )


def _tier_input(raw: Any, index: int, tier_id: str) -> PricingTier:
    where = f"pricingTiers[{index}]"
    if not isinstance(raw, Mapping):
        raise _invalid(f"{where} must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid(f"{where}.name must be a non-empty string")
    # Trimmed before the uniqueness check, as upstream does.
    name = name.strip()
    if len(name) > MAX_TIER_NAME:
        raise _invalid(f"{where}.name exceeds maximum length of {MAX_TIER_NAME} characters")
    is_default = raw.get("isDefault", False)
    if not isinstance(is_default, bool):
        raise _invalid(f"{where}.isDefault must be a boolean")
    priority = raw.get("priority")
    if isinstance(priority, float) and priority.is_integer():
        priority = int(priority)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise _invalid(f"{where}.priority must be an integer")
    if not 0 <= priority <= MAX_PRIORITY:
        raise _invalid(f"{where}.priority must be between 0 and {MAX_PRIORITY}")
    conditions = raw.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid(f"{where}.conditions must be an array")
    prices = raw.get("prices")
    if not isinstance(prices, Mapping):
        raise _invalid(f"{where}.prices must be an object of usage type to price")
    exact: dict[str, Decimal] = {}
    for usage_type, price in prices.items():
        if isinstance(price, bool) or not isinstance(price, (int, float)):
            raise _invalid(f"{where}.prices.{usage_type} must be a number")
        if not math.isfinite(price) or price < 0:
            raise _invalid(f"{where}.prices.{usage_type}: Price must be non-negative")
        exact[usage_type] = Decimal(repr(price)) if isinstance(price, float) else Decimal(price)
    return PricingTier(
        id=tier_id,
        name=name,
        is_default=is_default,
        priority=priority,
        conditions=tuple(
            _condition(c, f"{where}.conditions[{i}]") for i, c in enumerate(conditions)
        ),
        prices=exact,
    )


def validate_pricing_tiers(tiers: Sequence[PricingTier]) -> str | None:
    """Upstream's `validatePricingTiers`: the first problem found, in its order, or None."""
    if not tiers:
        return "At least one pricing tier is required"
    defaults = [tier for tier in tiers if tier.is_default]
    if not defaults:
        return "Exactly one pricing tier must have isDefault: true"
    if len(defaults) > 1:
        return f"Only one pricing tier can have isDefault: true, found {len(defaults)}"
    default = defaults[0]
    if default.priority != 0:
        return "Default pricing tier must have priority: 0"
    if default.conditions:
        return "Default pricing tier must have empty conditions array"
    for tier in tiers:
        if not tier.is_default and not tier.conditions:
            return f'Non-default pricing tier "{tier.name}" must have at least one condition'
    if len({tier.priority for tier in tiers}) != len(tiers):
        return "Pricing tier priorities must be unique within a model"
    if len({tier.name for tier in tiers}) != len(tiers):
        return "Pricing tier names must be unique"
    for tier in tiers:
        for condition in tier.conditions:
            if isinstance(condition, PricingTierCondition):
                problem = _usage_pattern_problem(condition.usage_detail_pattern)
                if problem is not None:
                    return f'Invalid regex pattern in tier "{tier.name}": {problem}'
    for tier in tiers:
        if not tier.prices:
            return f'Pricing tier "{tier.name}" must have at least one price defined'
    expected = sorted(default.prices)
    for tier in tiers:
        got = sorted(tier.prices)
        if not tier.is_default and got != expected:
            return (
                f'Pricing tier "{tier.name}" must have the same usage keys as the default tier. '
                f"Expected: [{', '.join(expected)}], Got: [{', '.join(got)}]"
            )
    return None


def _flat_tier(model_id: str, prices: Mapping[str, float | int | None]) -> PricingTier:
    return PricingTier(
        id=f"{model_id}_tier_default",
        name=FLAT_TIER_NAME,
        is_default=True,
        priority=0,
        prices={
            key: Decimal(repr(price)) if isinstance(price, float) else Decimal(price)
            for key, price in prices.items()
            if price is not None
        },
    )


# --- the catalog pricing reads ----------------------------------------------------------------


class ModelCatalog:
    """Built-in models plus every project's own, as one list for `PriceObservations`.

    The list is cached in-process: `invalidate()` drops it at once. `CreateModel`/`DeleteModel`
    call it here and publish the change on the invalidation bus, to which the container
    subscribes every process's catalog; `ttl_seconds` only bounds staleness when a message is
    lost. A re-read that finds nothing changed keeps the same list object, so consumers that
    key their caches on it (the pricing matcher) keep them.
    """

    def __init__(
        self,
        records: RecordStore,
        clock: Clock,
        builtin: Sequence[Model],
        ttl_seconds: float = 30.0,
    ) -> None:
        self._records = records
        self._clock = clock
        self._builtin: tuple[Model, ...] = tuple(builtin)
        self._by_id = {model.id: model for model in self._builtin}
        self._ttl = timedelta(seconds=ttl_seconds)
        self._current: tuple[Model, ...] | None = None
        self._expires_at: datetime | None = None
        self._generation = 0
        self._lock = asyncio.Lock()
        self._indexed: Sequence[Model] | None = None
        self._index: dict[str, Model] = {}

    @property
    def builtin(self) -> tuple[Model, ...]:
        return self._builtin

    def builtin_model(self, model_id: str) -> Model | None:
        return self._by_id.get(model_id)

    def invalidate(self) -> None:
        self._generation += 1
        self._expires_at = None

    def _fresh(self) -> bool:
        return (
            self._current is not None
            and self._expires_at is not None
            and self._clock.now() < self._expires_at
        )

    async def models(self) -> Sequence[Model]:
        if self._fresh():
            assert self._current is not None
            return self._current
        async with self._lock:
            if self._fresh():  # another task reloaded while this one waited
                assert self._current is not None
                return self._current
            generation = self._generation
            try:
                async with self._records.unit_of_work() as uow:
                    custom = await uow.models.list_all()
            except Exception:
                if self._current is None:
                    raise
                # Pricing with a list at most one TTL older beats failing the ingestion job.
                log.warning("reloading project models failed; keeping the cached list")
                self._expires_at = self._clock.now() + self._ttl
                return self._current
            loaded = self._builtin + tuple(custom)
            if self._current is None or loaded != self._current:
                self._current = loaded
            # Invalidated while reading: what was read may predate that change; read again
            # on the next call instead of trusting it for a whole TTL.
            if generation == self._generation:
                self._expires_at = self._clock.now() + self._ttl
            return self._current

    async def by_id(self) -> Mapping[str, Model]:
        """The current models by id (for price fields of reads); rebuilt only when the list
        changed."""
        models = await self.models()
        if models is not self._indexed:
            self._index = {model.id: model for model in models}
            self._indexed = models
        return self._index


# --- use cases ---------------------------------------------------------------------------------


async def _models_changed(
    catalog: ModelCatalog, bus: InvalidationBus | None, project_id: str, model_id: str
) -> None:
    """After the commit: this process's catalog re-reads on its next use, and with a bus so
    does every other process's (the workers price with it: a new model must price the very
    next observations, not those after the catalog's TTL)."""
    # Also directly: a catalog not subscribed to this bus must still read its own writes;
    # when it is subscribed, the second invalidation costs nothing.
    catalog.invalidate()
    if bus is not None:
        await bus.publish(MODELS, cache_key(project_id, model_id))


class CreateModel:
    """`POST /api/public/models`: validate like upstream, store, refresh the catalog."""

    def __init__(
        self,
        records: RecordStore,
        clock: Clock,
        ids: IdGenerator,
        catalog: ModelCatalog,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._records = records
        self._clock = clock
        self._ids = ids
        self._catalog = catalog
        self._bus = bus

    def _parse(self, project_id: str, body: Any) -> Model:
        if not isinstance(body, Mapping):
            raise _invalid("expected a JSON object")
        model_name = _required_string(body, "modelName")
        match_pattern = _required_string(body, "matchPattern")
        start_date = _start_date(body.get("startDate"))
        flat = {key: _optional_price(body, f"{key}Price") for key in ("input", "output", "total")}
        unit = body.get("unit")
        if unit not in UNITS:
            raise _invalid(f"unit is required and must be one of {list(UNITS)}")
        tokenizer_id = body.get("tokenizerId")
        if tokenizer_id is not None and tokenizer_id not in TOKENIZERS:
            raise _invalid(f"tokenizerId must be one of {list(TOKENIZERS)} or null")
        tokenizer_config = body.get("tokenizerConfig")
        if tokenizer_config is not None and not isinstance(tokenizer_config, Mapping):
            raise _invalid("tokenizerConfig must be a JSON object or null")
        raw_tiers = body.get("pricingTiers")
        if raw_tiers is not None and not isinstance(raw_tiers, list):
            raise _invalid("pricingTiers must be an array or null")

        model_id = self._ids.new_id()
        has_flat = any(price is not None for price in flat.values())
        has_tiers = bool(raw_tiers)
        if has_flat and has_tiers:
            raise _invalid(
                "Must provide either flat prices (inputPrice/outputPrice/totalPrice) OR "
                "pricingTiers, not both"
            )
        if not has_flat and not has_tiers:
            raise _invalid(
                "Must provide either flat prices (inputPrice/outputPrice/totalPrice) OR "
                "pricingTiers"
            )
        if has_flat:
            per_direction = flat["input"] is not None or flat["output"] is not None
            if per_direction and flat["total"] is not None:
                raise _invalid("If input and/or output price is set, total price must be null")
            tiers: tuple[PricingTier, ...] = (_flat_tier(model_id, flat),)
        else:
            assert raw_tiers is not None
            parsed = [_tier_input(raw, i, self._ids.new_id()) for i, raw in enumerate(raw_tiers)]
            problem = validate_pricing_tiers(parsed)
            if problem is not None:
                raise _invalid(f"pricingTiers: {problem}")
            tiers = tuple(sorted(parsed, key=lambda tier: tier.priority))
        _check_match_pattern(match_pattern)
        now = self._clock.now()
        return Model(
            id=model_id,
            project_id=project_id,
            model_name=model_name,
            match_pattern=match_pattern,
            start_date=start_date,
            unit=unit,
            tokenizer_id=tokenizer_id,
            tokenizer_config=dict(tokenizer_config) if tokenizer_config is not None else None,
            pricing_tiers=tiers,
            created_at=now,
            updated_at=now,
        )

    async def __call__(self, project_id: str, body: Any) -> Model:
        model = self._parse(project_id, body)
        async with self._records.unit_of_work() as uow:
            if await uow.models.get_by_name(project_id, model.model_name) is not None:
                raise InvalidInput(f"Model name '{model.model_name}' already exists in project")
            await uow.models.add(model)
            await uow.commit()
        await _models_changed(self._catalog, self._bus, project_id, model.id)
        return model


def _list_order(model: Model) -> tuple[str, bool, str, bool, float, str]:
    # Upstream: ORDER BY model_name, unit (NULLs last), start_date DESC NULLS LAST; id breaks
    # ties so pages are stable.
    start = model.start_date
    return (
        model.model_name,
        model.unit is None,
        model.unit or "",
        start is None,
        -start.timestamp() if start else 0.0,
        model.id,
    )


class ListModels:
    """`GET /api/public/models`: the project's models and the built-ins, paged."""

    def __init__(self, records: RecordStore, catalog: ModelCatalog) -> None:
        self._records = records
        self._catalog = catalog

    async def __call__(self, project_id: str, page: int = 1, limit: int = 50) -> Page[Model]:
        async with self._records.unit_of_work() as uow:
            custom = await uow.models.list_for_project(project_id)
        # A few hundred rows at most: sorting in memory keeps one ordering for both sources.
        every = sorted((*custom, *self._catalog.builtin), key=_list_order)
        start = (page - 1) * limit
        return Page(items=every[start : start + limit], total=len(every))


class GetModel:
    """`GET /api/public/models/{id}`: a project model or a built-in one."""

    def __init__(self, records: RecordStore, catalog: ModelCatalog) -> None:
        self._records = records
        self._catalog = catalog

    async def __call__(self, project_id: str, model_id: str) -> Model:
        async with self._records.unit_of_work() as uow:
            model = await uow.models.get(project_id, model_id)
        if model is None:
            model = self._catalog.builtin_model(model_id)
        if model is None:
            raise NotFound(MODEL_NOT_FOUND)
        return model


class DeleteModel:
    """`DELETE /api/public/models/{id}`: only a project's own models can be deleted."""

    def __init__(
        self, records: RecordStore, catalog: ModelCatalog, bus: InvalidationBus | None = None
    ) -> None:
        self._records = records
        self._catalog = catalog
        self._bus = bus

    async def __call__(self, project_id: str, model_id: str) -> None:
        async with self._records.unit_of_work() as uow:
            deleted = await uow.models.delete(project_id, model_id)
            await uow.commit()
        if not deleted:
            raise NotFound(BUILTIN_NOT_DELETABLE)
        await _models_changed(self._catalog, self._bus, project_id, model_id)
