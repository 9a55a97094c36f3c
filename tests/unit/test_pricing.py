"""Model matching, tier selection and cost inference against the real built-in price table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fathom.core.domain.pricing import (
    Model,
    ModelMatcher,
    PricingTier,
    PricingTierAttributeCondition,
    PricingTierCondition,
    calculate_cost,
    derive_usage_details,
    infer_usage_and_cost,
    match_model,
    needs_tokenization,
    provided_cost_result,
    select_pricing_tier,
    usage_exceeds_total,
)
from fathom.plugins.builtin.model_catalog import load_default_models, parse_model
from tests.unit.conftest import catalog_model

NOW = datetime(2026, 6, 1, tzinfo=UTC)


# --- the catalog ------------------------------------------------------------------------------


def test_catalog_parses_every_entry_with_one_default_tier(models: list[Model]) -> None:
    assert len(models) == 167
    assert all(m.project_id is None and m.is_langfuse_managed for m in models)
    assert all(sum(t.is_default for t in m.pricing_tiers) == 1 for m in models)
    gpt4o = next(m for m in models if m.model_name == "gpt-4o")
    assert gpt4o.id == "b9854a5c92dc496b997d99d20"
    assert gpt4o.tokenizer_id == "openai"
    assert gpt4o.tokenizer_config == {
        "tokensPerName": 1,
        "tokenizerModel": "gpt-4o",
        "tokensPerMessage": 3,
    }
    assert gpt4o.created_at == datetime(2024, 5, 13, 23, 15, 7, 670000, tzinfo=UTC)
    assert gpt4o.start_date is None
    # Prices are exact decimals, not binary floats.
    assert gpt4o.prices["input"] == Decimal("0.0000025")
    assert gpt4o.prices["output"] == Decimal("0.00001")


def test_catalog_returns_fresh_list_of_shared_models() -> None:
    first, second = load_default_models(), load_default_models()
    assert first is not second
    assert first[0] is second[0]


def test_catalog_parses_both_condition_kinds(models: list[Model]) -> None:
    gemini = next(m for m in models if m.model_name == "gemini-2.5-pro")
    large = next(t for t in gemini.pricing_tiers if not t.is_default)
    assert large.name == "Large Context"
    assert large.conditions == (
        PricingTierCondition("(input|prompt|cached)", "gt", 200000, case_sensitive=False),
    )
    gpt4o = next(m for m in models if m.model_name == "gpt-4o")
    fast = next(t for t in gpt4o.pricing_tiers if not t.is_default)
    assert fast.conditions == (
        PricingTierAttributeCondition("model_parameters", "service_tier", ("fast", "priority")),
    )


# --- model matching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provided", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620"),
        ("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("gemini-2.5-pro", "gemini-2.5-pro"),
    ],
)
def test_builtin_models_match(
    models: list[Model], matcher: ModelMatcher, provided: str, expected: str
) -> None:
    assert matcher.match(provided, NOW).model_name == expected
    assert match_model(models, provided, NOW, "project-1").model_name == expected


@pytest.mark.parametrize("provided", ["gpt-4o-turbo-ultra", "my-gpt-4o", "gpt-4o ", "", None])
def test_unknown_names_do_not_match(
    models: list[Model], matcher: ModelMatcher, provided: str | None
) -> None:
    assert matcher.match(provided, NOW) is None
    assert match_model(models, provided, NOW, None) is None


def _custom(
    model_id: str,
    project_id: str | None,
    start: datetime | None,
    pattern: str = "(?i)^(gpt-4o)$",
    input_price: float = 1.0,
) -> Model:
    tier = PricingTier(f"{model_id}-t", "Standard", True, 0, (), {"input": input_price})
    return Model(
        id=model_id,
        model_name="gpt-4o",
        match_pattern=pattern,
        project_id=project_id,
        start_date=start,
        pricing_tiers=(tier,),
    )


def test_project_model_wins_over_builtin_only_in_its_project(models: list[Model]) -> None:
    custom = _custom("custom", "p1", None)
    all_models = [*models, custom]
    matcher = ModelMatcher(all_models)
    assert matcher.match("gpt-4o", NOW, "p1") is custom
    assert matcher.match("gpt-4o", NOW, "p2").id == "b9854a5c92dc496b997d99d20"
    assert matcher.match("gpt-4o", NOW, None).id == "b9854a5c92dc496b997d99d20"
    assert match_model(all_models, "gpt-4o", NOW, "p1") is custom
    assert match_model(all_models, "gpt-4o", NOW, "p2").id == "b9854a5c92dc496b997d99d20"


def test_newest_start_date_not_after_the_generation_wins() -> None:
    jan = datetime(2026, 1, 1, tzinfo=UTC)
    mar = datetime(2026, 3, 1, tzinfo=UTC)
    undated = _custom("undated", "p1", None)
    old = _custom("old", "p1", jan)
    new = _custom("new", "p1", mar)
    models = [undated, new, old]
    matcher = ModelMatcher(models)
    for at, expected in [
        (datetime(2025, 12, 31, tzinfo=UTC), undated),  # before both: only the undated applies
        (jan, old),  # start_date <= at is inclusive
        (datetime(2026, 2, 1, tzinfo=UTC), old),
        (mar + timedelta(seconds=1), new),
    ]:
        assert matcher.match("gpt-4o", at, "p1") is expected
        assert match_model(models, "gpt-4o", at, "p1") is expected
    # The memo is time-independent: the same name at another time still sees the dates.
    assert matcher.match("gpt-4o", datetime(2025, 1, 1, tzinfo=UTC), "p1") is undated
    # Without a time, start dates are ignored (upstream's current lookup).
    assert matcher.match("gpt-4o", None, "p1") is new


def test_future_project_model_falls_back_to_builtin(models: list[Model]) -> None:
    future = _custom("future", "p1", datetime(2027, 1, 1, tzinfo=UTC))
    matcher = ModelMatcher([*models, future])
    assert matcher.match("gpt-4o", NOW, "p1").id == "b9854a5c92dc496b997d99d20"
    assert matcher.match("gpt-4o", datetime(2027, 2, 1, tzinfo=UTC), "p1") is future


def test_naive_datetimes_are_taken_as_utc() -> None:
    dated = _custom("dated", "p1", datetime(2026, 1, 1))  # naive
    assert dated.start_date == datetime(2026, 1, 1, tzinfo=UTC)
    matcher = ModelMatcher([dated])
    assert matcher.match("gpt-4o", datetime(2026, 1, 2), "p1") is dated
    assert matcher.match("gpt-4o", datetime(2025, 12, 31, tzinfo=UTC), "p1") is None


def test_pattern_is_searched_unanchored_and_case_sensitive_without_flag() -> None:
    # Postgres `~` semantics: a search, case-sensitive unless the pattern says (?i).
    loose = _custom("loose", None, None, pattern="ft:gpt")
    matcher = ModelMatcher([loose])
    assert matcher.match("ft:gpt-4o:acme", NOW) is loose
    assert matcher.match("FT:GPT-4o:acme", NOW) is None


def test_uncompilable_pattern_never_matches() -> None:
    broken = _custom("broken", None, None, pattern="(?i)^(gpt-4o$")
    assert ModelMatcher([broken]).match("gpt-4o", NOW) is None
    assert match_model([broken], "gpt-4o", NOW, None) is None


def test_matcher_memo_is_bounded() -> None:
    matcher = ModelMatcher([_custom("m", None, None)], max_entries=3)
    for i in range(10):
        matcher.match(f"name-{i}", NOW)
    assert len(matcher._memo) == 3
    assert matcher.match("gpt-4o", NOW).id == "m"


# --- pricing tiers ----------------------------------------------------------------------------


def test_large_context_tier_switches_above_threshold(matcher: ModelMatcher) -> None:
    gemini = catalog_model(matcher, "gemini-2.5-pro")
    at_threshold = {"input": 150_000, "input_cached_tokens": 50_000, "output": 1_000}
    assert select_pricing_tier(gemini, at_threshold).name == "Standard"
    above = {"input": 150_000, "input_cached_tokens": 50_001, "output": 1_000}
    assert select_pricing_tier(gemini, above).name == "Large Context"
    # Keys are matched case-insensitively by regex search ("promptTokenCount" contains "prompt").
    assert select_pricing_tier(gemini, {"promptTokenCount": 200_001}).name == "Large Context"
    # `output` does not count towards the input-side threshold.
    assert select_pricing_tier(gemini, {"input": 10, "output": 500_000}).name == "Standard"

    standard = calculate_cost(gemini, {"input": 200_000, "output": 1_000})
    assert standard.tier_name == "Standard"
    assert standard.cost_details == {"input": 0.25, "output": 0.01, "total": 0.26}
    large = calculate_cost(gemini, {"input": 200_001, "output": 1_000})
    assert large.tier_name == "Large Context"
    assert large.cost_details["input"] == pytest.approx(0.5000025)
    assert large.cost_details["output"] == pytest.approx(0.015)
    assert large.total_cost == pytest.approx(0.5150025)


def test_attribute_tiers_by_priority(matcher: ModelMatcher) -> None:
    gpt54 = catalog_model(matcher, "gpt-5.4")
    small, large = {"input": 1_000}, {"input": 300_000}
    assert select_pricing_tier(gpt54, small).name == "Standard"
    assert select_pricing_tier(gpt54, large).name == "Large Context (>272K)"
    flex = {"service_tier": "flex"}
    assert select_pricing_tier(gpt54, small, model_parameters=flex).name == "Flex"
    # Priority 1 (flex AND large) is tried before priority 3 (flex) and 4 (large).
    assert (
        select_pricing_tier(gpt54, large, model_parameters=flex).name
        == "Flex · Large context (>272K)"
    )
    assert (
        select_pricing_tier(gpt54, small, model_parameters={"service_tier": "priority"}).name
        == "Fast mode"
    )
    # Attribute conditions look at the named source only.
    assert select_pricing_tier(gpt54, small, metadata=flex).name == "Standard"
    assert select_pricing_tier(gpt54, small, model_parameters={"service_tier": "auto"}).name == (
        "Standard"
    )


def test_tier_selection_needs_usage(matcher: ModelMatcher) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    assert select_pricing_tier(gpt4o, {}) is None
    assert select_pricing_tier(gpt4o, None) is None
    assert select_pricing_tier(gpt4o, {"input": 0}).name == "Standard"


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("gt", [False, False, True]), ("gte", [False, True, True]), ("lt", [True, False, False]),
     ("lte", [True, True, False]), ("eq", [False, True, False]), ("neq", [True, False, True])],
)  # fmt: skip
def test_condition_operators(operator: str, expected: list[bool]) -> None:
    condition = PricingTierCondition("^input", operator, 100)
    results = [condition.evaluate({"input": n, "output": 1000}) for n in (99, 100, 101)]
    assert results == expected


def test_condition_case_sensitivity_and_summing() -> None:
    sensitive = PricingTierCondition("^Input", "gt", 10, case_sensitive=True)
    insensitive = PricingTierCondition("^Input", "gt", 10)
    usage = {"input": 6, "input_cached": 6, "output": 100}
    assert not sensitive.evaluate(usage)
    assert insensitive.evaluate(usage)  # 6 + 6 > 10
    assert not PricingTierCondition("(", "gt", 0).evaluate(usage)  # broken regex fails safe


def test_tier_without_conditions_never_matches_and_no_default_gives_none() -> None:
    tiers = (PricingTier("a", "Empty", False, 1, (), {"input": 1}),)
    model = Model("m", "m", "m", pricing_tiers=tiers)
    assert select_pricing_tier(model, {"input": 5}) is None
    assert calculate_cost(model, {"input": 5}) == ({}, None, None)


def test_attribute_values_compare_as_strings() -> None:
    condition = PricingTierAttributeCondition("metadata", "k", ("true", "2", "0.5", "x"))
    assert condition.evaluate(None, {"k": True})
    assert condition.evaluate(None, {"k": 2})
    assert condition.evaluate(None, {"k": 2.0})
    assert condition.evaluate(None, {"k": 0.5})
    assert not condition.evaluate(None, {"k": False})
    assert not condition.evaluate(None, {"other": "x"})
    assert not condition.evaluate({"k": "x"}, None)


# --- costs ------------------------------------------------------------------------------------


def test_cost_of_gpt4o_usage(matcher: ModelMatcher) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    result = calculate_cost(
        gpt4o, {"input": 1_000_000, "output": 100_000, "input_cached_tokens": 10, "audio": 5}
    )
    assert result.tier_name == "Standard"
    # `audio` has no price and gets no cost.
    assert result.cost_details == {
        "input": 2.5,
        "output": 1.0,
        "input_cached_tokens": 1.25e-05,
        "total": 3.5000125,
    }
    assert result.total_cost == 3.5000125
    fast = calculate_cost(gpt4o, {"input": 1_000}, model_parameters={"service_tier": "fast"})
    assert fast == ({"input": 0.00425, "total": 0.00425}, 0.00425, "Fast mode")


def test_cost_uses_decimal_arithmetic() -> None:
    tier = PricingTier("t", "Standard", True, 0, (), {"output": 1e-05})
    model = Model("m", "m", "m", pricing_tiers=(tier,))
    # Like decimal.js upstream: 3 × 1e-05 is 3e-05, where float arithmetic gives
    # 3.0000000000000004e-05.
    assert calculate_cost(model, {"output": 3}).cost_details["output"] == 3e-05
    assert calculate_cost(model, {"output": 2.5}).cost_details["output"] == 2.5e-05


def test_total_price_prices_total_usage(matcher: ModelMatcher) -> None:
    embedding = catalog_model(matcher, "text-embedding-3-small")
    result = calculate_cost(embedding, {"input": 400, "total": 500})
    assert result.cost_details == {"total": 1e-05}
    assert result.total_cost == 1e-05


def test_no_priced_key_gives_no_total(matcher: ModelMatcher) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    assert calculate_cost(gpt4o, {"images": 3}) == ({}, None, "Standard")
    assert calculate_cost(None, {"input": 3}) == ({}, None, None)
    assert calculate_cost(gpt4o, {}) == ({}, None, None)


def test_costs_are_clamped_to_storage_range() -> None:
    tier = PricingTier("t", "Standard", True, 0, (), {"input": 1000.0})
    model = Model("m", "m", "m", pricing_tiers=(tier,))
    result = calculate_cost(model, {"input": 10**12})
    assert result.cost_details["input"] == pytest.approx(999_999.999999999999)


# --- inference (usage + cost precedence) ------------------------------------------------------


def test_usage_without_total_gets_the_sum_of_all_keys() -> None:
    assert derive_usage_details({"input": 10, "output": 5, "input_cached_tokens": 2}) == {
        "input": 10,
        "output": 5,
        "input_cached_tokens": 2,
        "total": 17,
    }
    assert derive_usage_details({"input": 10, "total": 3}) == {"input": 10, "total": 3}
    # Values are coerced like Number(); negative and non-numeric ones are dropped.
    assert derive_usage_details({"input": "7", "output": -1, "x": "abc", "y": None}) == {
        "input": 7,
        "total": 7,
    }
    assert derive_usage_details({}) == {}
    assert derive_usage_details({}, {"input": 3, "output": 4, "total": 7}) == {
        "input": 3,
        "output": 4,
        "total": 7,
    }
    # Provided usage beats tokenizer counts.
    assert derive_usage_details({"input": 1}, {"input": 3}) == {"input": 1, "total": 1}


def test_calculated_cost_when_nothing_was_ingested(matcher: ModelMatcher) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    result = infer_usage_and_cost({"input": 1000, "output": 200}, None, gpt4o)
    assert result.usage_details == {"input": 1000, "output": 200, "total": 1200}
    assert result.cost_details == {"input": 0.0025, "output": 0.002, "total": 0.0045000000000000005}
    assert result.total_cost == 0.0045000000000000005  # same float sum as upstream's reduce
    assert result.tier_name == "Standard"


def test_ingested_cost_wins_over_calculated(matcher: ModelMatcher) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    result = infer_usage_and_cost(
        {"input": 1000, "output": 200}, {"input": 1.0, "output": 2.0, "total": 5.0}, gpt4o
    )
    assert result.cost_details == {"input": 1.0, "output": 2.0, "total": 5.0}
    assert result.total_cost == 5.0
    assert result.usage_details["total"] == 1200
    assert result.tier_name == "Standard"  # the tier is still recorded


@pytest.mark.parametrize(
    ("provided", "expected_details", "expected_total"),
    [
        ({"input": 1, "output": 2}, {"input": 1, "output": 2, "total": 3}, 3),
        ({"total": 2}, {"total": 2}, 2),
        ({"output": 2, "total": 2}, {"output": 2, "total": 2}, 2),
        ({"input": 1}, {"input": 1, "total": 1}, 1),
        ({"output": 2}, {"output": 2, "total": 2}, 2),
        # Upstream derives a total only from input/output; other keys leave it unknown.
        ({"input": 1, "cache": 0.5}, {"input": 1, "cache": 0.5}, None),
        ({"input": None, "output": 4}, {"output": 4, "total": 4}, 4),
    ],
)
def test_ingested_cost_totals(
    provided: dict[str, float | None],
    expected_details: dict[str, float],
    expected_total: float | None,
) -> None:
    # Mirrors upstream's calculateTokenCost unit tests.
    result = infer_usage_and_cost({"input": 0, "output": 0, "total": 0}, provided, None)
    assert result.cost_details == expected_details
    assert result.total_cost == expected_total
    assert provided_cost_result(provided).cost_details == expected_details


def test_no_model_no_cost() -> None:
    result = infer_usage_and_cost({"input": 5}, None, None)
    assert result == ({"input": 5, "total": 5}, {}, None, None)
    assert infer_usage_and_cost(None, None, None) == ({}, {}, None, None)


def test_tokenized_usage_is_priced(matcher: ModelMatcher) -> None:
    gpt4o = catalog_model(matcher, "gpt-4o")
    assert needs_tokenization(gpt4o, {}, "DEFAULT")
    assert needs_tokenization(gpt4o, None, None)
    assert not needs_tokenization(gpt4o, {"input": 1}, "DEFAULT")
    assert not needs_tokenization(gpt4o, {}, "ERROR")
    assert not needs_tokenization(None, {}, "DEFAULT")
    result = infer_usage_and_cost(
        {}, None, gpt4o, tokenized_usage={"input": 400, "output": 100, "total": 500}
    )
    assert result.cost_details == {"input": 0.001, "output": 0.001, "total": 0.002}


def test_tier_uses_final_usage_and_model_parameters(matcher: ModelMatcher) -> None:
    gpt54 = catalog_model(matcher, "gpt-5.4")
    result = infer_usage_and_cost(
        {"input": 300_000, "output": 1_000},
        None,
        gpt54,
        model_parameters={"service_tier": "flex"},
    )
    assert result.tier_name == "Flex · Large context (>272K)"
    assert result.cost_details["input"] == 0.75
    assert result.cost_details["output"] == pytest.approx(0.01125)


def test_usage_exceeds_total() -> None:
    assert usage_exceeds_total({"input": 10, "input_cached_tokens": 5, "total": 10})
    assert not usage_exceeds_total({"input": 10, "output": 5, "total": 15})
    assert not usage_exceeds_total({"input": 10})


def test_parse_model_for_custom_models() -> None:
    model = parse_model(
        {
            "id": "c1",
            "modelName": " finetune ",
            "matchPattern": "(?i)^ft:gpt-4o:acme$",
            "startDate": "2026-01-01T00:00:00.000Z",
            "unit": "TOKENS",
            "pricingTiers": [
                {
                    "id": "t",
                    "name": "Standard",
                    "isDefault": True,
                    "priority": 0,
                    "conditions": [],
                    "prices": {"input": 0.5},
                }
            ],
        },
        project_id="p1",
    )
    assert model.model_name == "finetune"
    assert model.project_id == "p1" and not model.is_langfuse_managed
    assert model.start_date == datetime(2026, 1, 1, tzinfo=UTC)
    assert model.prices == {"input": Decimal("0.5")}
    assert ModelMatcher([model]).match("FT:GPT-4O:ACME", NOW, "p1") is model
