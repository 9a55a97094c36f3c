"""Project models: validation, listing with the built-ins, the pricing catalog and its cache."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.pricing import (
    AttributeSource,
    Model,
    PricingTierAttributeCondition,
    PricingTierCondition,
    PricingTierOperator,
)
from fathom.core.domain.tracing import Observation, ObservationType
from fathom.core.usecases.models import (
    BUILTIN_NOT_DELETABLE,
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    ModelCatalog,
    condition_from_json,
    condition_to_json,
)
from fathom.core.usecases.pricing import PriceObservations, StaticModels
from fathom.plugins.builtin.model_catalog import load_default_models
from tests.unit.fakes import FakeClock, FakeModels, InMemoryRecordStore, SequentialIds

P1 = "p1"
P2 = "p2"


class World:
    def __init__(self, builtin: Sequence[Model] | None = None) -> None:
        self.records = InMemoryRecordStore()
        self.clock = FakeClock()
        self.ids = SequentialIds()
        self.builtin = load_default_models() if builtin is None else list(builtin)
        self.catalog = ModelCatalog(self.records, self.clock, self.builtin, ttl_seconds=30)
        self.create = CreateModel(self.records, self.clock, self.ids, self.catalog)
        self.list = ListModels(self.records, self.catalog)
        self.get = GetModel(self.records, self.catalog)
        self.delete = DeleteModel(self.records, self.catalog)


@pytest.fixture
def world() -> World:
    return World()


def flat(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "modelName": "my-gpt",
        "matchPattern": "(?i)^my-gpt$",
        "unit": "TOKENS",
        "inputPrice": 0.000001,
        "outputPrice": 0.000002,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def default_tier(**overrides: Any) -> dict[str, Any]:
    tier: dict[str, Any] = {
        "name": "Standard",
        "isDefault": True,
        "priority": 0,
        "conditions": [],
        "prices": {"input": 1e-6, "output": 2e-6},
    }
    tier.update(overrides)
    return tier


def large_tier(**overrides: Any) -> dict[str, Any]:
    tier: dict[str, Any] = {
        "name": "Large context",
        "isDefault": False,
        "priority": 1,
        "conditions": [
            {
                "usageDetailPattern": "^input",
                "operator": "gt",
                "value": 1000,
                "caseSensitive": False,
            }
        ],
        "prices": {"input": 3e-6, "output": 4e-6},
    }
    tier.update(overrides)
    return tier


def tiered(*tiers: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = flat(inputPrice=..., outputPrice=..., pricingTiers=list(tiers))
    body.update(overrides)
    return body


# --- CreateModel ------------------------------------------------------------------------------


async def test_create_flat_price_model_gets_a_standard_default_tier(world: World) -> None:
    model = await world.create(P1, flat(startDate="2025-02-01T00:00:00Z", tokenizerId="openai"))
    assert model.id == "id-1"
    assert model.project_id == P1 and not model.is_langfuse_managed
    assert model.start_date == datetime(2025, 2, 1, tzinfo=UTC)
    assert model.created_at == world.clock.now()
    [tier] = model.pricing_tiers
    assert (tier.id, tier.name, tier.is_default, tier.priority) == (
        "id-1_tier_default",
        "Standard",
        True,
        0,
    )
    # Exact decimals, not the binary expansion of the float that came in.
    assert tier.prices == {"input": Decimal("0.000001"), "output": Decimal("0.000002")}
    async with world.records.unit_of_work() as uow:
        assert await uow.models.get(P1, model.id) == model


async def test_create_total_price_only(world: World) -> None:
    model = await world.create(P1, flat(inputPrice=None, outputPrice=None, totalPrice=0.5))
    assert model.prices == {"total": Decimal("0.5")}


async def test_create_tiered_model_orders_tiers_by_priority(world: World) -> None:
    body = tiered(
        large_tier(
            conditions=[
                {"source": "metadata", "key": "tier", "operator": "in", "values": ["fast"]},
            ],
        ),
        default_tier(),
        tokenizerConfig={"tokenizerModel": "gpt-4o"},
    )
    model = await world.create(P1, body)
    assert [t.name for t in model.pricing_tiers] == ["Standard", "Large context"]
    assert model.pricing_tiers[1].conditions == (
        PricingTierAttributeCondition(AttributeSource.METADATA, "tier", ("fast",)),
    )
    assert model.pricing_tiers[1].prices["input"] == Decimal("0.000003")
    assert model.tokenizer_config == {"tokenizerModel": "gpt-4o"}


def _problem(exc: pytest.ExceptionInfo[InvalidInput]) -> str:
    return exc.value.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "expected a JSON object"),
        (flat(modelName=...), "modelName is required"),
        (flat(modelName="  "), "modelName must not be empty"),
        (flat(matchPattern=...), "matchPattern is required"),
        (flat(matchPattern=5), "matchPattern is required"),
        (flat(unit=...), "unit is required"),
        (flat(unit="TOKEN"), "unit is required and must be one of"),
        (flat(startDate="yesterday"), "startDate must be an ISO 8601 datetime"),
        (flat(inputPrice=-1), "inputPrice must be non-negative"),
        (flat(outputPrice="1"), "outputPrice must be a number"),
        (flat(inputPrice=True), "inputPrice must be a number"),
        (flat(tokenizerId="llama"), "tokenizerId must be one of"),
        (flat(tokenizerConfig="x"), "tokenizerConfig must be a JSON object"),
        (flat(totalPrice=1.0), "If input and/or output price is set, total price must be null"),
        (flat(inputPrice=None, outputPrice=None), "Must provide either flat prices"),
        (flat(pricingTiers=[default_tier()]), "OR pricingTiers, not both"),
        (flat(pricingTiers={}), "pricingTiers must be an array"),
    ],
)
async def test_create_rejects_invalid_fields(world: World, body: Any, expected: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        await world.create(P1, body)
    assert expected in _problem(exc)
    assert _problem(exc).startswith("Invalid request data")


def with_condition(**condition: Any) -> list[dict[str, Any]]:
    return [default_tier(), large_tier(conditions=[condition])]


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ([large_tier()], "Exactly one pricing tier must have isDefault: true"),
        ([default_tier(), default_tier(name="B")], "Only one pricing tier can have isDefault"),
        ([default_tier(priority=1)], "Default pricing tier must have priority: 0"),
        (
            [default_tier(conditions=large_tier()["conditions"])],
            "Default pricing tier must have empty conditions array",
        ),
        (
            [default_tier(), large_tier(conditions=[])],
            'Non-default pricing tier "Large context" must have at least one condition',
        ),
        ([default_tier(), large_tier(priority=0)], "priorities must be unique"),
        ([default_tier(), large_tier(name=" Standard ")], "names must be unique"),
        ([default_tier(prices={})], 'Pricing tier "Standard" must have at least one price'),
        (
            [default_tier(), large_tier(prices={"input": 1.0})],
            "must have the same usage keys as the default tier. Expected: [input, output], "
            "Got: [input]",
        ),
        ([default_tier(name="")], "pricingTiers[0].name must be a non-empty string"),
        ([default_tier(priority=1000)], "priority must be between 0 and 999"),
        ([default_tier(priority=0.5)], "priority must be an integer"),
        ([default_tier(prices={"input": -1})], "Price must be non-negative"),
        ([default_tier(conditions="x")], "conditions must be an array"),
        ([default_tier(), "tier"], "pricingTiers[1] must be an object"),
        (
            with_condition(usageDetailPattern="(", operator="gt", value=1),
            'Invalid regex pattern in tier "Large context": Invalid regex syntax',
        ),
        (
            with_condition(usageDetailPattern="(a+)+", operator="gt", value=1),
            "catastrophic backtracking",
        ),
        (
            with_condition(usageDetailPattern="x" * 201, operator="gt", value=1),
            "exceeds maximum length of 200",
        ),
        (
            with_condition(usageDetailPattern="^in", operator="between", value=1),
            "operator must be one of",
        ),
        (
            with_condition(usageDetailPattern="^in", operator="gt", value=-1),
            "value must be non-negative",
        ),
        (
            with_condition(source="headers", key="k", operator="in", values=["v"]),
            "source must be one of",
        ),
        (
            with_condition(source="metadata", key="k", operator="eq", values=["v"]),
            "operator of an attribute condition must be 'in'",
        ),
        (
            with_condition(source="metadata", key="k", operator="in", values=[]),
            "values must be a non-empty array",
        ),
    ],
)
async def test_create_rejects_invalid_tiers(world: World, tiers: list[Any], expected: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        await world.create(P1, tiered(*tiers))
    assert expected in _problem(exc)


@pytest.mark.parametrize("pattern", ["(", "[a-", "(?i", "a(?i)b"])
async def test_match_pattern_must_compile(world: World, pattern: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        await world.create(P1, flat(matchPattern=pattern))
    assert _problem(exc).startswith("matchPattern is not a valid regex pattern")


async def test_match_pattern_with_nested_unbounded_quantifiers_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput, match="catastrophic backtracking"):
        await world.create(P1, flat(matchPattern="^(a+)+$"))
    # Optional groups nest freely, as in the built-in patterns.
    await world.create(P1, flat(matchPattern="(?i)^(openai/)?(gpt-4(-\\d{4})?)$"))


async def test_every_builtin_match_pattern_would_be_accepted(world: World) -> None:
    for index, builtin in enumerate(world.builtin):
        await world.create(P1, flat(modelName=f"copy-{index}", matchPattern=builtin.match_pattern))


async def test_duplicate_model_name_in_a_project_is_refused(world: World) -> None:
    await world.create(P1, flat())
    with pytest.raises(InvalidInput, match="Model name 'my-gpt' already exists in project"):
        await world.create(P1, flat())
    await world.create(P2, flat())  # names are per project


def test_conditions_round_trip_through_json() -> None:
    for condition in (
        PricingTierCondition("^input", PricingTierOperator.GTE, 10.5, True),
        PricingTierAttributeCondition(AttributeSource.MODEL_PARAMETERS, "k", ("a", "b")),
    ):
        assert condition_from_json(condition_to_json(condition)) == condition


# --- ListModels, GetModel, DeleteModel ---------------------------------------------------------


async def test_list_merges_project_and_builtin_models_in_upstream_order(world: World) -> None:
    own = await world.create(P1, flat(modelName="aaa-first"))
    await world.create(P2, flat(modelName="aaa-other-project"))
    page = await world.list(P1, page=1, limit=3)
    assert page.total == len(world.builtin) + 1
    assert page.items[0] == own
    names = [m.model_name for m in page.items]
    assert names == sorted(names)
    everything = (await world.list(P1, page=1, limit=1000)).items
    assert sum(not m.is_langfuse_managed for m in everything) == 1
    assert "aaa-other-project" not in {m.model_name for m in everything}


async def test_list_pages(world: World) -> None:
    total = len(world.builtin)
    first = await world.list(P1, page=1, limit=50)
    last = await world.list(P1, page=(total + 49) // 50, limit=50)
    beyond = await world.list(P1, page=100, limit=50)
    assert len(first.items) == 50
    assert len(last.items) == (total % 50 or 50)
    assert beyond.items == [] and beyond.total == total
    seen = [m.id for page in range(1, 5) for m in (await world.list(P1, page, 50)).items]
    assert len(seen) == len(set(seen)) == total


async def test_project_model_with_a_builtin_name_sorts_first(world: World) -> None:
    # Same name: ordered by unit with NULLs last, and the built-ins have no unit.
    own = await world.create(P1, flat(modelName="gpt-4o", matchPattern="(?i)^gpt-4o$"))
    items = (await world.list(P1, 1, 1000)).items
    same = [m for m in items if m.model_name == "gpt-4o"]
    assert same[0] == own and same[1].is_langfuse_managed


async def test_get_project_and_builtin_models(world: World) -> None:
    own = await world.create(P1, flat())
    assert await world.get(P1, own.id) == own
    builtin = world.builtin[0]
    assert await world.get(P1, builtin.id) is builtin
    with pytest.raises(NotFound, match="No model with this id found."):
        await world.get(P2, own.id)
    with pytest.raises(NotFound):
        await world.get(P1, "missing")


async def test_delete_only_project_models(world: World) -> None:
    own = await world.create(P1, flat())
    with pytest.raises(NotFound) as exc:
        await world.delete(P2, own.id)
    await world.delete(P1, own.id)
    with pytest.raises(NotFound):
        await world.get(P1, own.id)
    with pytest.raises(NotFound) as exc:
        await world.delete(P1, world.builtin[0].id)
    assert exc.value.message == BUILTIN_NOT_DELETABLE


# --- ModelCatalog ------------------------------------------------------------------------------


async def test_catalog_caches_and_refreshes_after_the_ttl(world: World) -> None:
    before = FakeModels.list_calls
    first = await world.catalog.models()
    assert list(first) == world.builtin
    assert await world.catalog.models() is first
    assert FakeModels.list_calls == before + 1

    # Another process adds a model straight into the store: seen only after the TTL.
    other = await World().create(P1, flat())
    async with world.records.unit_of_work() as uow:
        await uow.models.add(other)
        await uow.commit()
    world.clock.advance(29)
    assert await world.catalog.models() is first
    world.clock.advance(1)
    refreshed = await world.catalog.models()
    assert refreshed is not first and refreshed[-1] == other

    # Nothing changed at the next refresh: the very same list object comes back.
    world.clock.advance(30)
    assert await world.catalog.models() is refreshed
    assert FakeModels.list_calls == before + 3


async def test_catalog_is_invalidated_by_create_and_delete(world: World) -> None:
    first = await world.catalog.models()
    model = await world.create(P1, flat())
    after_create = await world.catalog.models()
    assert after_create is not first and model in after_create
    await world.delete(P1, model.id)
    after_delete = await world.catalog.models()
    assert model not in after_delete and list(after_delete) == list(first)


async def test_catalog_keeps_serving_the_cached_list_when_a_reload_fails(world: World) -> None:
    first = await world.catalog.models()

    def broken() -> Any:
        raise ConnectionError("database down")

    world.records.unit_of_work = broken  # type: ignore[method-assign]
    world.clock.advance(31)
    assert await world.catalog.models() is first
    fresh = ModelCatalog(world.records, world.clock, [])
    with pytest.raises(ConnectionError):
        await fresh.models()


# --- pricing through the catalog --------------------------------------------------------------


def generation(project_id: str, model: str = "gpt-4o") -> Observation:
    return Observation(
        id="o1",
        project_id=project_id,
        trace_id="t1",
        type=ObservationType.GENERATION,
        start_time=datetime(2026, 6, 1, tzinfo=UTC),
        model=model,
        provided_usage_details={"input": 1000, "output": 100},
    )


async def test_project_model_overrides_the_builtin_for_its_project_only(world: World) -> None:
    price = PriceObservations(world.catalog)
    builtin_id = next(m.id for m in world.builtin if m.model_name == "gpt-4o")

    baseline = generation(P1)
    await price(P1, [baseline])
    assert baseline.internal_model_id == builtin_id
    assert baseline.cost_details["input"] == pytest.approx(1000 * 2.5e-6)

    own = await world.create(
        P1,
        flat(
            modelName="gpt-4o",
            matchPattern="(?i)^(openai/)?gpt-4o$",
            inputPrice=0.01,
            outputPrice=0.02,
        ),
    )
    overridden, elsewhere = generation(P1), generation(P2)
    await price(P1, [overridden])
    await price(P2, [elsewhere])
    assert overridden.internal_model_id == own.id
    assert overridden.cost_details == {"input": 10.0, "output": 2.0, "total": 12.0}
    assert overridden.total_cost == 12.0
    assert overridden.usage_pricing_tier_name == "Standard"
    assert elsewhere.internal_model_id == builtin_id

    await world.delete(P1, own.id)
    restored = generation(P1)
    await price(P1, [restored])
    assert restored.internal_model_id == builtin_id


async def test_project_tiers_apply_when_their_conditions_hold(world: World) -> None:
    price = PriceObservations(world.catalog)
    await world.create(
        P1,
        tiered(default_tier(), large_tier(), modelName="tiered", matchPattern="^tiered$"),
    )
    small, large = generation(P1, "tiered"), generation(P1, "tiered")
    large.provided_usage_details = {"input": 2000, "output": 10}
    await price(P1, [small, large])
    assert small.usage_pricing_tier_name == "Standard"
    assert small.cost_details["input"] == pytest.approx(1000 * 1e-6)
    assert large.usage_pricing_tier_name == "Large context"
    assert large.cost_details["input"] == pytest.approx(2000 * 3e-6)


class CountingSource:
    def __init__(self, models: Sequence[Model]) -> None:
        self.current: Sequence[Model] = tuple(models)
        self.calls = 0

    async def models(self) -> Sequence[Model]:
        self.calls += 1
        return self.current


async def test_matcher_is_rebuilt_only_when_the_list_object_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fathom.core.usecases.pricing as pricing

    builds: list[int] = []
    real = pricing.ModelMatcher

    def counting(models: Sequence[Model]) -> Any:
        builds.append(len(models))
        return real(models)

    monkeypatch.setattr(pricing, "ModelMatcher", counting)
    builtin = load_default_models()
    source = CountingSource(builtin)
    price = PriceObservations(source)
    await price(P1, [generation(P1)])
    await price(P1, [generation(P1), generation(P1)])
    assert source.calls == 2 and builds == [len(builtin)]  # one await per call, one build
    source.current = tuple(builtin[:1])
    await price(P1, [generation(P1)])
    assert builds == [len(builtin), 1]


async def test_static_models_source() -> None:
    priced = generation(P1)
    await PriceObservations(StaticModels(load_default_models()))(P1, [priced])
    assert priced.internal_model_id is not None and priced.total_cost


async def test_pricing_runs_off_the_event_loop() -> None:
    """A worker chunk's pricing takes tens of milliseconds: requests on the loop must not
    wait for it. The token counter sees which thread prices."""
    threads: list[int] = []

    class Counter:
        def count(self, model: Model, text_or_messages: Any) -> int | None:
            threads.append(threading.get_ident())
            return 3

    unpriced = generation(P1)
    unpriced.provided_usage_details = {}
    unpriced.input = "hello there"
    await PriceObservations(StaticModels(load_default_models()), Counter())(P1, [unpriced])
    assert threads and threading.get_ident() not in threads
    assert unpriced.usage_details["input"] == 3 and unpriced.total_cost


async def test_catalog_by_id_follows_the_list(world: World) -> None:
    index = await world.catalog.by_id()
    assert set(index) == {model.id for model in world.builtin}
    assert await world.catalog.by_id() is index  # the list did not change: no rebuild
    own = await world.create(P1, flat())
    rebuilt = await world.catalog.by_id()
    assert rebuilt is not index and rebuilt[own.id] == own
