"""Parity with upstream Langfuse's cost and usage rules, one test per rule.

Each test is named after the upstream rule it pins down (model match, pricing tiers, usage and
cost inference, tokenisation, the models API). Where Fathom deliberately differs, the test says
so and pins Fathom's side.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.pricing import (
    MAX_COST,
    Model,
    ModelMatcher,
    PricingTier,
    PricingTierAttributeCondition,
    PricingTierCondition,
    calculate_cost,
    compile_pattern,
    infer_usage_and_cost,
    match_model,
    needs_tokenization,
    select_pricing_tier,
)
from fathom.core.domain.tokens import ModelTokenCounter, count_usage, json_text
from fathom.core.domain.tracing import Level, Observation, ObservationType
from fathom.core.domain.usage import provided_cost_details, provided_usage_details
from fathom.core.usecases.models import (
    BUILTIN_NOT_DELETABLE,
    MODEL_NOT_FOUND,
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    ModelCatalog,
)
from fathom.core.usecases.pricing import PriceObservations, StaticModels
from fathom.plugins.builtin.model_catalog import load_default_models
from tests.unit.conftest import catalog_model
from tests.unit.fakes import FakeClock, InMemoryRecordStore, SequentialIds

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PROJECT = "p1"


def _tier(
    name: str,
    priority: int,
    prices: dict[str, float],
    *conditions: PricingTierCondition | PricingTierAttributeCondition,
) -> PricingTier:
    return PricingTier(
        id=f"t-{name}",
        name=name,
        is_default=not conditions,
        priority=priority,
        conditions=conditions,
        prices={key: Decimal(str(value)) for key, value in prices.items()},
    )


def _model(
    model_id: str = "m",
    pattern: str = "(?i)^m$",
    *,
    project_id: str | None = None,
    start_date: datetime | None = None,
    tiers: tuple[PricingTier, ...] = (),
    tokenizer_id: str | None = None,
    tokenizer_config: dict[str, Any] | None = None,
    unit: str | None = None,
) -> Model:
    return Model(
        id=model_id,
        model_name=model_id,
        match_pattern=pattern,
        project_id=project_id,
        start_date=start_date,
        unit=unit,
        tokenizer_id=tokenizer_id,
        tokenizer_config=tokenizer_config,
        pricing_tiers=tiers or (_tier("Standard", 0, {"input": 1, "output": 2}),),
    )


def _usage_condition(
    pattern: str, operator: str, value: float, *, case_sensitive: bool = False
) -> PricingTierCondition:
    return PricingTierCondition(pattern, operator, value, case_sensitive)


class WordEncoding:
    """One token per whitespace-separated word, so the counted text shows in the count."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def count_text(self, encoding: str, text: str) -> int | None:
        self.texts.append(text)
        return len(text.split())


# --- model matching (`modelMatch.ts`: `<name> ~ match_pattern`) ------------------------------


def test_match_pattern_is_an_unanchored_case_sensitive_regex_search() -> None:
    # Postgres `~` searches anywhere in the name and is case-sensitive without a flag.
    model = _model(pattern="gpt")
    assert match_model([model], "azure/my-gpt-deployment", NOW, PROJECT) is model
    assert match_model([model], "GPT", NOW, PROJECT) is None


def test_inline_case_insensitive_prefix_makes_the_pattern_case_insensitive(
    matcher: ModelMatcher,
) -> None:
    assert catalog_model(matcher, "GPT-4o").model_name == "gpt-4o"
    assert catalog_model(matcher, "OpenAI/gpt-4o").model_name == "gpt-4o"
    # The built-in patterns are anchored: a suffix is another model (or none).
    found = matcher.match("gpt-4o-mystery", NOW)
    assert found is None or found.model_name != "gpt-4o"


def test_every_builtin_pattern_carries_the_inline_flag_and_compiles(
    models: list[Model],
) -> None:
    assert all(model.match_pattern.startswith("(?i)") for model in models)
    assert all(compile_pattern(model.match_pattern) is not None for model in models)


def test_project_model_overrides_the_builtin_in_its_own_project_only(
    models: list[Model],
) -> None:
    own = _model("own-gpt-4o", "(?i)^gpt-4o$", project_id=PROJECT)
    matcher = ModelMatcher([*models, own])
    assert matcher.match("gpt-4o", NOW, PROJECT) is own
    found = matcher.match("gpt-4o", NOW, "another-project")
    assert found is not None and found.is_langfuse_managed


def test_newest_start_date_not_after_the_observation_start_wins() -> None:
    # Deliberate difference (documented in the pricing module): upstream ignores startDate and
    # always takes the newest; Fathom follows the contract's "only newer generations".
    undated = _model("undated", "^m$")
    old = _model("old", "^m$", start_date=NOW - timedelta(days=30))
    new = _model("new", "^m$", start_date=NOW - timedelta(days=1))
    future = _model("future", "^m$", start_date=NOW + timedelta(days=1))
    models = [undated, old, new, future]
    assert match_model(models, "m", NOW, PROJECT) is new
    assert match_model(models, "m", NOW - timedelta(days=7), PROJECT) is old
    # Models without a start date come last (`start_date DESC NULLS LAST`).
    assert match_model(models, "m", NOW - timedelta(days=90), PROJECT) is undated
    assert ModelMatcher(models).match("m", NOW, PROJECT) is new


def test_unit_is_not_a_match_criterion() -> None:
    # Upstream v3 dropped the unit condition from the lookup; the unit is only descriptive.
    characters = _model(pattern="^m$", unit="CHARACTERS")
    assert match_model([characters], "m", NOW, PROJECT) is characters


def test_no_model_name_matches_nothing(matcher: ModelMatcher) -> None:
    assert matcher.match(None, NOW) is None
    assert matcher.match("", NOW) is None


# --- pricing tiers (`pricing-tiers/matcher.ts`) ---------------------------------------------


def test_conditional_tiers_by_ascending_priority_first_full_match_wins() -> None:
    big = _usage_condition("^input", "gt", 100)
    tiers = (
        _tier("Standard", 0, {"input": 1}),
        _tier("Second", 2, {"input": 3}, big),
        _tier("First", 1, {"input": 2}, big),
        _tier("Both", 3, {"input": 4}, big, _usage_condition("output", "gt", 1_000)),
    )
    model = _model(tiers=tiers)
    assert select_pricing_tier(model, {"input": 500, "output": 5_000}).name == "First"


def test_default_tier_when_no_conditional_tier_matches() -> None:
    model = _model(
        tiers=(
            _tier("Large", 1, {"input": 2}, _usage_condition("input", "gt", 200_000)),
            _tier("Standard", 0, {"input": 1}),
        )
    )
    assert select_pricing_tier(model, {"input": 10}).name == "Standard"


def test_usage_condition_sums_every_matching_key_case_insensitively_by_default() -> None:
    condition = _usage_condition("^input", "gt", 200_000)
    assert condition.evaluate({"input_cached": 150_000, "INPUT_regular": 60_000, "output": 1})
    assert not condition.evaluate({"input_cached": 150_000, "output": 100_000})


def test_case_sensitive_usage_condition_only_sums_exact_case_keys() -> None:
    condition = _usage_condition("^input", "gt", 10, case_sensitive=True)
    assert not condition.evaluate({"INPUT": 100})
    assert condition.evaluate({"input": 100})


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("gt", False), ("gte", True), ("lt", False), ("lte", True), ("eq", True), ("neq", False)],
)
def test_usage_condition_operators_compare_the_sum(operator: str, expected: bool) -> None:
    assert _usage_condition("input", operator, 10).evaluate({"input": 4, "input_x": 6}) is expected


def test_broken_condition_regex_fails_safe() -> None:
    assert not _usage_condition("(unclosed", "gte", 0).evaluate({"input": 1})


def test_attribute_condition_needs_the_exact_top_level_key_with_a_listed_value(
    matcher: ModelMatcher,
) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    usage = {"input": 1_000}
    for parameters in ({"service_tier": "fast"}, {"service_tier": "priority"}):
        assert select_pricing_tier(gpt4o, usage, model_parameters=parameters).name == "Fast mode"
    for parameters in ({"service_tier": "standard"}, {"different_key": "priority"}, None):
        assert select_pricing_tier(gpt4o, usage, model_parameters=parameters).name == "Standard"
    metadata_tier = _tier(
        "Geo",
        1,
        {"input": 2},
        PricingTierAttributeCondition("metadata", "inference_geo", ("us",)),
    )
    model = _model(tiers=(_tier("Standard", 0, {"input": 1}), metadata_tier))
    assert select_pricing_tier(model, usage, metadata={"inference_geo": "us"}).name == "Geo"


def test_tier_matching_needs_at_least_one_usage_key_even_a_zero() -> None:
    # `hasPricingTierUsageDetails`: {} matches no tier (no tier name), {input: 0} does.
    model = _model()
    assert select_pricing_tier(model, {}) is None
    assert select_pricing_tier(model, {"input": 0}).name == "Standard"
    assert infer_usage_and_cost(None, None, model).tier_name is None


def test_builtin_large_context_tier_above_200k_prompt_tokens(matcher: ModelMatcher) -> None:
    gemini = catalog_model(matcher, "gemini-2.5-pro")
    assert select_pricing_tier(gemini, {"input": 200_000}).name == "Standard"
    assert select_pricing_tier(gemini, {"input": 150_000, "input_cached": 60_000}).name == (
        "Large Context"
    )


def test_usage_pricing_tier_name_is_recorded_even_when_cost_was_ingested(
    matcher: ModelMatcher,
) -> None:
    priced = infer_usage_and_cost(
        {"input": 10}, {"total": 1.5}, catalog_model(matcher, "gpt-4o"), model_parameters=None
    )
    assert priced.tier_name == "Standard"
    assert priced.cost_details == {"total": 1.5} and priced.total_cost == 1.5


# --- usage and cost inference (`IngestionService.getGenerationUsage`) ------------------------


def test_ingested_cost_wins_over_inferred_cost(matcher: ModelMatcher) -> None:
    priced = infer_usage_and_cost(
        {"input": 1_000, "output": 1_000}, {"input": 0.5}, catalog_model(matcher, "gpt-4o")
    )
    assert priced.cost_details == {"input": 0.5, "total": 0.5}


@pytest.mark.parametrize(
    ("provided", "cost_details", "total"),
    [
        ({"input": 1, "output": 2}, {"input": 1, "output": 2, "total": 3}, 3),
        ({"total": 2}, {"total": 2}, 2),
        ({"output": 2, "total": 2}, {"output": 2, "total": 2}, 2),
        ({"input": 1}, {"input": 1, "total": 1}, 1),
        ({"output": 2}, {"output": 2, "total": 2}, 2),
        ({"input": 1, "cache": 2}, {"input": 1, "cache": 2}, None),
    ],
)
def test_ingested_cost_total_is_given_or_input_plus_output_only(
    provided: dict[str, float], cost_details: dict[str, float], total: float | None
) -> None:
    priced = infer_usage_and_cost({"input": 0, "output": 0, "total": 0}, provided, _model())
    assert priced.cost_details == cost_details
    assert priced.total_cost == total


def test_total_usage_is_the_sum_of_every_provided_key_when_missing() -> None:
    priced = infer_usage_and_cost({"input": 10, "output": 5, "input_cached_tokens": 3}, None, None)
    assert priced.usage_details == {"input": 10, "output": 5, "input_cached_tokens": 3, "total": 18}
    assert infer_usage_and_cost({"input": 1, "total": 7}, None, None).usage_details["total"] == 7


def test_cost_per_priced_key_and_total_from_total_price_else_sum() -> None:
    flat = _model()  # input 1, output 2 per unit
    costs = calculate_cost(flat, {"input": 3, "output": 4, "unpriced": 100, "total": 107})
    assert costs.cost_details == {"input": 3.0, "output": 8.0, "total": 11.0}
    totalled = _model(tiers=(_tier("Standard", 0, {"total": 0.5}),))
    costs = calculate_cost(totalled, {"input": 3, "output": 4, "total": 7})
    assert costs.cost_details == {"total": 3.5} and costs.total_cost == 3.5
    assert calculate_cost(flat, {"unpriced": 1}).total_cost is None


def test_costs_use_exact_decimal_prices(matcher: ModelMatcher) -> None:
    # decimal.js `price.mul(units).toNumber()`: 0.1 + 0.2 style float error must not appear.
    model = _model(tiers=(_tier("Standard", 0, {"input": 0.0000025}),))
    assert calculate_cost(model, {"input": 3}).cost_details["input"] == 0.0000075
    gpt4o = catalog_model(matcher, "gpt-4o")
    assert calculate_cost(gpt4o, {"input": 1_000_000}).cost_details["input"] == 2.5


def test_costs_are_clamped_to_the_decimal_18_12_column() -> None:
    model = _model(tiers=(_tier("Standard", 0, {"input": 1e12}),))
    assert calculate_cost(model, {"input": 10}).cost_details["input"] == MAX_COST


def test_provided_usage_keeps_non_negative_numbers_only() -> None:
    priced = infer_usage_and_cost({"input": -1, "output": "7", "x": None, "y": True}, None, None)
    assert priced.usage_details == {"output": 7, "total": 7}


def test_openai_chat_completions_usage_maps_to_input_output_total_with_details() -> None:
    raw = {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": None},
        "completion_tokens_details": {"reasoning_tokens": 60},
    }
    assert provided_usage_details(None, raw) == {
        "input": 70,
        "output": 0,  # details are subtracted from their headline count, floored at 0
        "total": 150,
        "input_cached_tokens": 30,
        "output_reasoning_tokens": 60,
    }


def test_openai_responses_usage_maps_to_input_output_total_with_details() -> None:
    raw = {
        "input_tokens": 10,
        "output_tokens": 20,
        "total_tokens": 30,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens_details": {"reasoning_tokens": 5},
    }
    assert provided_usage_details(None, raw) == {
        "input": 6,
        "output": 15,
        "total": 30,
        "input_cached_tokens": 4,
        "output_reasoning_tokens": 5,
    }


def test_openai_shapes_are_strict_else_a_plain_map_of_counts() -> None:
    # Without total_tokens (or with an extra key) it is not the OpenAI shape: keys stay as sent.
    assert provided_usage_details(None, {"prompt_tokens": 1, "completion_tokens": 2}) == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
    }


def test_legacy_openai_style_usage_becomes_input_output_total() -> None:
    raw = {"promptTokens": 3, "completionTokens": 4, "totalTokens": 7, "inputCost": 1.0}
    assert provided_usage_details(raw, None) == {"input": 3, "output": 4, "total": 7}
    # That shape carries no costs upstream: the whole object is rewritten.
    assert provided_cost_details(raw, None) is None


def test_legacy_total_is_derived_only_without_usage_details() -> None:
    assert provided_usage_details({"input": 3, "output": 4}, None) == {
        "input": 3,
        "output": 4,
        "total": 7,
    }
    assert provided_usage_details({"input": 0, "output": 4}, None)["total"] == 0  # `0 ?? 4`
    assert provided_usage_details({"input": 3, "output": 4}, {"cached": 1}) == {
        "input": 3,
        "output": 4,
        "cached": 1,
    }


def test_usage_details_override_legacy_usage_key_by_key() -> None:
    assert provided_usage_details({"input": 3, "output": 4, "total": 7}, {"input": 9}) == {
        "input": 9,
        "output": 4,
        "total": 7,
    }


def test_legacy_costs_map_to_input_output_total_and_cost_details_override() -> None:
    legacy = {"inputCost": 1.0, "outputCost": 2.0, "totalCost": 3.0}
    assert provided_cost_details(legacy, None) == {"input": 1.0, "output": 2.0, "total": 3.0}
    assert provided_cost_details(legacy, {"total": 5.0, "cache": 0.5}) == {
        "input": 1.0,
        "output": 2.0,
        "total": 5.0,
        "cache": 0.5,
    }


# --- tokenisation when usage is absent (`features/tokenisation`) -----------------------------


def test_tokenizes_only_for_a_matched_model_without_usage_and_not_error_level() -> None:
    model = _model()
    assert needs_tokenization(model, {}, "DEFAULT")
    assert not needs_tokenization(None, {}, "DEFAULT")
    assert not needs_tokenization(model, {"input": 1}, "DEFAULT")
    assert not needs_tokenization(model, {}, "ERROR")
    # Only provided usage counts: an ingested cost does not stop the counting.
    assert needs_tokenization(model, {"input": -1}, "WARNING")


def test_openai_chat_messages_get_overhead_only_for_chat_tokenizer_models(
    matcher: ModelMatcher,
) -> None:
    messages = [{"role": "user", "name": "ann", "content": "hello there"}]
    counter = ModelTokenCounter(WordEncoding())
    # 3 per message + role(1) + name(1) + 1 per name + content(2), then 3 reply priming.
    assert counter.count(catalog_model(matcher, "gpt-4o"), messages) == 11
    # A tiktoken model outside upstream's chat list counts the messages as JSON text, even
    # with per-message overhead configured.
    turbo = _model(
        tokenizer_id="openai",
        tokenizer_config={
            "tokenizerModel": "gpt-4-turbo-2024-04-09",
            "tokensPerMessage": 3,
            "tokensPerName": 1,
        },
    )
    assert counter.count(turbo, messages) == len(json_text(messages).split())


def test_strings_are_counted_as_is_and_other_values_as_json_text(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    counter = ModelTokenCounter(encoding)
    gpt4o = catalog_model(matcher, "gpt-4o")
    assert counter.count(gpt4o, "one two three") == 3
    assert counter.count(gpt4o, {"a": "b c"}) == 2
    assert encoding.texts[-1] == '{"a":"b c"}'
    # Stored text is parsed back first: a JSON string literal counts as its content.
    assert counter.count(gpt4o, '"x y"') == 2


def test_claude_counts_the_stored_text_without_parsing_it(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    counter = ModelTokenCounter(encoding)
    claude = catalog_model(matcher, "claude-2.1")
    assert counter.count(claude, '"x y"') == 2
    assert encoding.texts[-1] == '"x y"'
    counter.count(claude, [{"role": "user", "content": "hi"}])
    assert encoding.texts[-1] == '[{"role":"user","content":"hi"}]'


def test_tokenizer_model_must_be_a_known_tiktoken_model() -> None:
    counter = ModelTokenCounter(WordEncoding())
    unknown = _model(tokenizer_id="openai", tokenizer_config={"tokenizerModel": "gpt-9"})
    no_config = _model(tokenizer_id="openai")
    no_tokenizer = _model()
    for model in (unknown, no_config, no_tokenizer):
        assert counter.count(model, "a b") is None


def test_only_truthy_inputs_are_counted_as_upstream_stores_them(matcher: ModelMatcher) -> None:
    counter = ModelTokenCounter(WordEncoding())
    gpt4o = catalog_model(matcher, "gpt-4o")
    for falsy in (None, "", 0, 0.0, False):
        assert counter.count(gpt4o, falsy) is None
    # An empty array is truthy in JavaScript and stored as "[]": a message-less chat.
    assert counter.count(gpt4o, []) == 3
    assert counter.count(gpt4o, {}) == 1  # "{}"
    assert count_usage(counter, gpt4o, "", "a b") == {"output": 2, "total": 2}


def test_numbers_are_written_as_javascript_writes_them() -> None:
    assert json_text({"t": 1.0, "n": [2.0, -0.0, 0.5], "big": 1e300}) == (
        '{"t":1,"n":[2,0,0.5],"big":1e+300}'
    )
    assert json_text([float("nan"), float("inf")]) == "[null,null]"


def test_nan_text_is_not_json_and_is_counted_as_text(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    ModelTokenCounter(encoding).count(catalog_model(matcher, "gpt-4o"), "NaN")
    assert encoding.texts[-1] == "NaN"


def test_total_tokens_only_when_a_count_is_non_zero(matcher: ModelMatcher) -> None:
    counter = ModelTokenCounter(WordEncoding())
    gpt4o = catalog_model(matcher, "gpt-4o")
    assert count_usage(counter, gpt4o, "a b", "c") == {"input": 2, "output": 1, "total": 3}
    assert count_usage(counter, gpt4o, "   ", None) == {"input": 0}


def test_unmatched_model_leaves_no_usage_cost_or_model_id(models: list[Model]) -> None:
    # Upstream recomputes usage/cost on every merge; a stored row whose model name changed to
    # an unknown one loses the old model's inferred usage and cost.
    observation = Observation("o", PROJECT, "t", ObservationType.GENERATION, NOW)
    observation.model = "gpt-4o"
    observation.input = "a b c"
    price = PriceObservations(StaticModels(models), ModelTokenCounter(WordEncoding()))
    asyncio.run(price(PROJECT, [observation]))
    assert observation.internal_model_id is not None and observation.usage_details
    observation.model = "no-such-model"
    asyncio.run(price(PROJECT, [observation]))
    assert observation.internal_model_id is None
    assert observation.usage_details == {} and observation.cost_details == {}
    assert observation.total_cost is None and observation.usage_pricing_tier_name is None


def test_error_level_generation_is_not_tokenized(models: list[Model]) -> None:
    observation = Observation("o", PROJECT, "t", ObservationType.GENERATION, NOW)
    observation.model = "gpt-4o"
    observation.input = "a b c"
    observation.level = Level.ERROR
    price = PriceObservations(StaticModels(models), ModelTokenCounter(WordEncoding()))
    asyncio.run(price(PROJECT, [observation]))
    assert observation.internal_model_id is not None
    assert observation.usage_details == {} and observation.usage_pricing_tier_name is None


# --- the models API (`publicApiModelService.ts`, `types/models.ts`) --------------------------


class World:
    def __init__(self) -> None:
        self.records = InMemoryRecordStore()
        self.clock = FakeClock()
        self.catalog = ModelCatalog(self.records, self.clock, load_default_models())
        self.create = CreateModel(self.records, self.clock, SequentialIds(), self.catalog)
        self.list = ListModels(self.records, self.catalog)
        self.get = GetModel(self.records, self.catalog)
        self.delete = DeleteModel(self.records, self.catalog)


FLAT = {"modelName": "mine", "matchPattern": "(?i)^mine$", "unit": "TOKENS", "inputPrice": 1}


def test_flat_prices_become_one_standard_default_tier() -> None:
    world = World()
    model = asyncio.run(world.create(PROJECT, {**FLAT, "outputPrice": 2}))
    (tier,) = model.pricing_tiers
    assert (tier.id, tier.name, tier.is_default, tier.priority, tier.conditions) == (
        f"{model.id}_tier_default",
        "Standard",
        True,
        0,
        (),
    )
    assert model.prices == {"input": Decimal(1), "output": Decimal(2)}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**FLAT, "pricingTiers": [{}]}, "not both"),
        ({k: v for k, v in FLAT.items() if k != "inputPrice"}, "OR pricingTiers"),
        ({**FLAT, "totalPrice": 3}, "total price must be null"),
        ({**FLAT, "unit": "WORDS"}, "unit"),
        ({**FLAT, "tokenizerId": "llama"}, "tokenizerId"),
        ({**FLAT, "inputPrice": -1}, "non-negative"),
    ],
)
def test_create_validates_like_post_models_v1_body(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        asyncio.run(World().create(PROJECT, body))


def test_model_name_is_unique_within_a_project() -> None:
    world = World()
    asyncio.run(world.create(PROJECT, FLAT))
    with pytest.raises(InvalidInput, match="Model name 'mine' already exists in project"):
        asyncio.run(world.create(PROJECT, FLAT))
    asyncio.run(world.create("p2", FLAT))  # another project may reuse it


def test_start_date_is_coerced_like_new_date_and_kept_in_utc() -> None:
    world = World()
    offset = asyncio.run(world.create(PROJECT, {**FLAT, "startDate": "2025-03-01T12:00:00+02:00"}))
    assert offset.start_date == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert offset.start_date.utcoffset() == timedelta(0)
    epoch = asyncio.run(
        world.create(PROJECT, {**FLAT, "modelName": "ms", "startDate": 1_740_830_400_000})
    )
    assert epoch.start_date == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_builtin_models_are_readable_but_not_deletable() -> None:
    world = World()
    builtin_id = world.catalog.builtin[0].id
    assert asyncio.run(world.get(PROJECT, builtin_id)).is_langfuse_managed
    with pytest.raises(NotFound) as deleting:
        asyncio.run(world.delete(PROJECT, builtin_id))
    assert str(deleting.value) == BUILTIN_NOT_DELETABLE
    with pytest.raises(NotFound) as reading:
        asyncio.run(world.get(PROJECT, "no-such-id"))
    assert str(reading.value) == MODEL_NOT_FOUND


def test_another_projects_model_is_invisible() -> None:
    world = World()
    model = asyncio.run(world.create("p2", FLAT))
    with pytest.raises(NotFound):
        asyncio.run(world.get(PROJECT, model.id))
    with pytest.raises(NotFound, match="cannot delete built-in models"):
        asyncio.run(world.delete(PROJECT, model.id))


def test_list_orders_by_name_then_unit_then_newest_start_date() -> None:
    world = World()
    for name, start in (("zz-a", None), ("zz-a-dated", "2024-01-01T00:00:00Z")):
        asyncio.run(
            world.create(
                PROJECT,
                {**FLAT, "modelName": name, "matchPattern": "^zz$", "startDate": start},
            )
        )
    page = asyncio.run(world.list(PROJECT, 1, 100))
    names = [model.model_name for model in page.items]
    assert page.total == len(world.catalog.builtin) + 2
    assert names == sorted(names)
