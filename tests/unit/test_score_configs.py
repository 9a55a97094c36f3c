"""Score configs: their own rules, a score checked and inflated against one, and the config
check of `AcceptScores` (with in-memory fakes: no database)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import pytest

from fathom.core.domain.access import AccessLevel, ApiKeyScope, Principal
from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.score_configs import (
    ARCHIVED,
    BOOLEAN_CATEGORIES,
    CONFIG_NOT_FOUND,
    ConfigCategory,
    ScoreConfig,
    ScoreInput,
    config_problems,
    inflate_score,
    js_number,
    name_problem,
    parse_categories,
    validate_score_against_config,
)
from fathom.core.domain.scores import ScoreDataType
from fathom.core.usecases.evaluation import ScoreConfigCache
from fathom.core.usecases.ingestion import AcceptScores, ScoreConfigCheck
from tests.unit.fakes import FakeClock, SequentialIds

NOW = datetime(2026, 1, 1, tzinfo=UTC)
N, C, B, T = (
    ScoreDataType.NUMERIC,
    ScoreDataType.CATEGORICAL,
    ScoreDataType.BOOLEAN,
    ScoreDataType.TEXT,
)


def config(data_type: ScoreDataType = N, **fields: Any) -> ScoreConfig:
    defaults: dict[str, Any] = {"id": "cfg", "project_id": "p1", "name": "quality"}
    if data_type is C:
        defaults["categories"] = (ConfigCategory("good", 1.0), ConfigCategory("bad", 0.0))
    if data_type is B:
        defaults["categories"] = BOOLEAN_CATEGORIES
    return ScoreConfig(
        data_type=data_type, created_at=NOW, updated_at=NOW, **{**defaults, **fields}
    )


def check(
    value: float | str | None, cfg: ScoreConfig, declared: ScoreDataType | None = None
) -> list[str]:
    return validate_score_against_config(ScoreInput(value, declared), cfg)


# --- the config's own rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["quality", "Helpfulness (v2)", "a.b-c_d e", "Qualität", "x" * 35, "42"]
)
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "name must not be empty"),
        ("x" * 36, "name must be at most 35 characters"),
        ("a/b", "name may only contain"),
        ("emoji 🙂", "name may only contain"),
        (3, "name must be a string"),
    ],
)
def test_invalid_names(name: Any, problem: str) -> None:
    assert problem in (name_problem(name) or "")


def test_a_valid_config_of_every_type_has_no_problems() -> None:
    assert config_problems(config(N)) == []
    assert config_problems(config(N, min_value=0.0, max_value=1.0)) == []
    assert config_problems(config(C)) == []
    assert config_problems(config(B)) == []
    assert config_problems(config(T)) == []


def test_numeric_range_must_be_ordered() -> None:
    assert config_problems(config(N, min_value=1.0, max_value=1.0)) == [
        "Maximum value must be greater than Minimum value"
    ]
    assert config_problems(config(N, min_value=2.0, max_value=1.0)) == [
        "Maximum value must be greater than Minimum value"
    ]


def test_fields_foreign_to_the_data_type_are_problems() -> None:
    assert config_problems(config(N, categories=(ConfigCategory("a", 1.0),))) == [
        "categories can only be set on CATEGORICAL score configs"
    ]
    assert config_problems(config(C, min_value=0.0)) == [
        "minValue and maxValue can only be set on NUMERIC score configs"
    ]
    assert config_problems(config(T, max_value=3.0)) == [
        "minValue and maxValue can only be set on NUMERIC score configs"
    ]
    assert config_problems(config(B, categories=(ConfigCategory("Yes", 1.0),))) == [
        "Boolean score configs always have the categories True (1) and False (0)"
    ]


def test_categories_must_be_unique_and_present() -> None:
    twice_label = (ConfigCategory("a", 1.0), ConfigCategory("a", 2.0))
    twice_value = (ConfigCategory("a", 1.0), ConfigCategory("b", 1.0))
    assert config_problems(config(C, categories=twice_label)) == [
        "Duplicate category label: a, category labels must be unique"
    ]
    assert config_problems(config(C, categories=twice_value)) == [
        "Duplicate category value: 1, category values must be unique"
    ]
    assert config_problems(config(C, categories=())) == [
        "Categorical score configs need at least one category"
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "good",
        [{"label": "good"}],
        [{"label": "", "value": 1}],
        [{"label": "good", "value": "1"}],
        [{"label": "good", "value": True}],
        ["good"],
    ],
)
def test_malformed_categories_use_upstreams_message(raw: Any) -> None:
    categories, problem = parse_categories(raw)
    assert categories is None
    assert problem == (
        "Category must be an array of objects with label value pairs, where labels and values "
        "are unique."
    )


def test_categories_parse_to_floats() -> None:
    categories, problem = parse_categories(
        [{"label": "a", "value": 1}, {"label": "b", "value": 0.5}]
    )
    assert problem is None
    assert categories == (ConfigCategory("a", 1.0), ConfigCategory("b", 0.5))


def test_numbers_print_like_javascript() -> None:
    assert (js_number(10.0), js_number(0.5), js_number(-3.0)) == ("10", "0.5", "-3")


# --- a score against its config ----------------------------------------------------------------


def test_numeric_value_in_range_passes_and_keeps_its_value() -> None:
    cfg = config(N, min_value=0.0, max_value=10.0)
    for value in (0.0, 5.5, 10.0):  # the range is inclusive
        assert check(value, cfg) == []
        assert inflate_score(ScoreInput(value), cfg).value == value
    inflated = inflate_score(ScoreInput(3.0), cfg)
    assert (inflated.data_type, inflated.string_value) == (N, None)


def test_numeric_value_out_of_range_names_the_bound() -> None:
    cfg = config(N, min_value=0.0, max_value=10.0)
    assert check(10.5, cfg) == [
        "Ingested score body not valid against provided config: "
        "Value exceeds maximum value of 10 defined in config"
    ]
    assert check(-0.5, cfg) == [
        "Ingested score body not valid against provided config: "
        "Value is below minimum value of 0 defined in config"
    ]


def test_open_numeric_range_takes_any_number() -> None:
    assert check(-1e9, config(N)) == []
    assert check(1e9, config(N, min_value=1.0)) == []


def test_numeric_config_refuses_a_string() -> None:
    [problem] = check("high", config(N))
    assert "Value must be a number for NUMERIC score configs, received string" in problem


def test_categorical_label_inflates_to_the_category_value() -> None:
    cfg = config(C)
    assert check("good", cfg) == []
    inflated = inflate_score(ScoreInput("good"), cfg)
    assert (inflated.data_type, inflated.value, inflated.string_value) == (C, 1.0, "good")
    assert inflate_score(ScoreInput("bad"), cfg).value == 0.0


def test_categorical_value_must_be_a_label() -> None:
    assert check("great", config(C)) == [
        "Ingested score body not valid against provided config: Value great does not map to a "
        "valid category. Pass a valid category value."
    ]
    [problem] = check(1.0, config(C))
    assert "for CATEGORICAL score configs, received number" in problem


def test_boolean_takes_0_or_1_and_inflates_the_string_value() -> None:
    cfg = config(B)
    assert check(1.0, cfg) == [] and check(0.0, cfg) == []
    assert inflate_score(ScoreInput(1.0), cfg).string_value == "True"
    inflated = inflate_score(ScoreInput(0.0), cfg)
    assert (inflated.data_type, inflated.value, inflated.string_value) == (B, 0.0, "False")
    for bad in (0.5, 2.0, "True"):
        assert check(bad, cfg) == [
            "Ingested score body not valid against provided config: Value must be either 0 or 1"
        ]


def test_text_config_takes_1_to_500_characters() -> None:
    cfg = config(T)
    assert check("free text", cfg) == []
    inflated = inflate_score(ScoreInput("free text"), cfg)
    assert (inflated.data_type, inflated.value, inflated.string_value) == (T, None, "free text")
    assert "between 1 and 500 characters" in check("x" * 501, cfg)[0]
    assert "for TEXT score configs, received number" in check(1.0, cfg)[0]


def test_declared_type_must_match_the_config() -> None:
    assert check(1.0, config(B), declared=N) == [
        "Data type mismatch based on config: expected BOOLEAN, got NUMERIC"
    ]
    assert check("good", config(C), declared=C) == []


def test_inferred_type_does_not_count_as_a_mismatch() -> None:
    # A number without dataType would be NUMERIC, yet a boolean config takes it.
    assert check(1.0, config(B)) == []
    assert inflate_score(ScoreInput(1.0), config(B)).data_type is B


def test_archived_config_refuses_scores() -> None:
    assert check(1.0, config(N, is_archived=True)) == [ARCHIVED]
    both = check(99.0, config(N, is_archived=True, max_value=1.0))
    assert both[0] == ARCHIVED and "maximum value of 1" in both[1]


def test_the_config_name_replaces_the_score_name() -> None:
    assert inflate_score(ScoreInput(1.0), config(N, name="official")).name == "official"


def test_score_input_reads_a_request_body() -> None:
    assert ScoreInput.from_body({"value": 1, "dataType": "BOOLEAN"}) == ScoreInput(1.0, B)
    assert ScoreInput.from_body({"value": True}) == ScoreInput(1.0, None)
    assert ScoreInput.from_body({"value": "good"}) == ScoreInput("good", None)
    assert ScoreInput.from_body({"value": None, "dataType": ["x"]}) == ScoreInput(None, None)


# --- the cache and AcceptScores ----------------------------------------------------------------


class FakeScoreConfigs:
    def __init__(self, configs: Mapping[str, ScoreConfig]) -> None:
        self.configs = dict(configs)
        self.reads: list[list[str]] = []

    async def get_many(self, project_id: str, config_ids: Sequence[str]) -> list[ScoreConfig]:
        self.reads.append(list(config_ids))
        return [c for i in config_ids if (c := self.configs.get(i)) and c.project_id == project_id]


class FakeUnitOfWork:
    def __init__(self, score_configs: FakeScoreConfigs) -> None:
        self.score_configs = score_configs

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class FakeRecords:
    def __init__(self, *configs: ScoreConfig) -> None:
        self.score_configs = FakeScoreConfigs({c.id: c for c in configs})

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.score_configs)


class FakeWriter:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    async def mask(
        self, principal: Principal, events: list[dict[str, Any]], headers: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        return events

    async def write(self, project_id: str, events: list[dict[str, Any]]) -> None:
        self.written.extend(events)

    def bodies(self) -> list[dict[str, Any]]:
        return [event["body"] for event in self.written]


PRINCIPAL = Principal(
    access_level=AccessLevel.PROJECT,
    organization_id="o1",
    project_id="p1",
    api_key_id="k1",
    public_key="pk-lf-1",
    scope=ApiKeyScope.PROJECT,
)


def accept_scores(
    records: FakeRecords, clock: FakeClock | None = None
) -> tuple[AcceptScores, FakeWriter]:
    writer = FakeWriter()
    clock = clock or FakeClock(NOW)
    cache = ScoreConfigCache(records, clock, ttl_seconds=5)  # type: ignore[arg-type]
    check = ScoreConfigCheck(records, clock, cache)  # type: ignore[arg-type]
    use_case = AcceptScores(writer, clock, SequentialIds(), check)  # type: ignore[arg-type]
    return use_case, writer


def score(**fields: Any) -> dict[str, Any]:
    return {"name": "quality", "traceId": "t1", "value": 1, **fields}


async def test_scores_without_config_never_read_the_records() -> None:
    records = FakeRecords()
    use_case, writer = accept_scores(records)
    result = await use_case(PRINCIPAL, [score(), score(value="good")], {})
    assert len(result.accepted) == 2 and result.errors == []
    assert records.score_configs.reads == []
    assert len(writer.written) == 2


async def test_valid_scores_are_inflated_in_the_stored_body() -> None:
    cat = config(C, id="cat", name="verdict")
    boolean = config(B, id="bool", name="correct")
    records = FakeRecords(cat, boolean)
    use_case, writer = accept_scores(records)
    items = [
        score(name="whatever", value="good", configId="cat"),
        score(value=1, configId="bool"),
    ]
    result = await use_case(PRINCIPAL, items, {})
    assert result.errors == [] and len(result.accepted) == 2
    first, second = writer.bodies()
    assert (first["name"], first["dataType"], first["value"]) == ("verdict", "CATEGORICAL", "good")
    assert first[ScoreConfigCheck.CATEGORY_VALUE] == 1.0
    assert (second["name"], second["dataType"]) == ("correct", "BOOLEAN")
    assert ScoreConfigCheck.CATEGORY_VALUE not in second
    assert records.score_configs.reads == [["cat", "bool"]]  # one read for both


async def test_single_invalid_score_fails_the_request() -> None:
    use_case, writer = accept_scores(FakeRecords(config(N, max_value=1.0)))
    with pytest.raises(InvalidInput, match="Value exceeds maximum value of 1"):
        await use_case(PRINCIPAL, [score(value=2, configId="cfg")], {}, single=True)
    with pytest.raises(InvalidInput, match=CONFIG_NOT_FOUND):
        await use_case(PRINCIPAL, [score(configId="nope")], {}, single=True)
    assert writer.written == []


async def test_array_keeps_the_valid_scores_and_lists_the_invalid() -> None:
    use_case, writer = accept_scores(FakeRecords(config(N, max_value=1.0)))
    items = [
        score(id="ok", value=1, configId="cfg"),
        score(id="too-big", value=2, configId="cfg"),
        score(id="unknown", configId="nope"),
        score(id="plain", value=7),
    ]
    result = await use_case(PRINCIPAL, items, {}, single=False)
    assert result.accepted == ["ok", "plain"]
    assert len(result.errors) == 2
    assert "Value exceeds maximum value of 1 defined in config" in result.errors[0]
    assert result.errors[1] == CONFIG_NOT_FOUND
    assert [body["id"] for body in writer.bodies()] == ["ok", "plain"]


async def test_one_item_array_lists_the_error_when_told_it_is_an_array() -> None:
    use_case, writer = accept_scores(FakeRecords())
    result = await use_case(PRINCIPAL, [score(configId="nope")], {}, single=False)
    assert result.accepted == [] and result.errors == [CONFIG_NOT_FOUND]
    assert writer.written == []


async def test_clients_cannot_set_the_category_value() -> None:
    use_case, writer = accept_scores(FakeRecords())
    await use_case(PRINCIPAL, [score(value="good", categoryValue=99)], {})
    assert ScoreConfigCheck.CATEGORY_VALUE not in writer.bodies()[0]


async def test_configs_of_another_project_are_not_found() -> None:
    use_case, _ = accept_scores(FakeRecords(config(N, project_id="other")))
    with pytest.raises(InvalidInput, match=CONFIG_NOT_FOUND):
        await use_case(PRINCIPAL, [score(configId="cfg")], {})


async def test_cache_serves_repeats_and_expires() -> None:
    clock = FakeClock(NOW)
    records = FakeRecords(config(N))
    use_case, _ = accept_scores(records, clock)
    await use_case(PRINCIPAL, [score(configId="cfg")], {})
    await use_case(PRINCIPAL, [score(configId="cfg"), score(configId="missing")], {}, single=False)
    await use_case(PRINCIPAL, [score(configId="missing")], {}, single=False)  # miss remembered
    assert records.score_configs.reads == [["cfg"], ["missing"]]
    clock.advance(6)
    await use_case(PRINCIPAL, [score(configId="cfg")], {})
    assert records.score_configs.reads[-1] == ["cfg"]


async def test_cache_put_makes_a_change_visible_at_once() -> None:
    records = FakeRecords(config(N))
    cache = ScoreConfigCache(records, FakeClock(NOW))  # type: ignore[arg-type]
    assert (await cache.get_many("p1", ["cfg"]))["cfg"].is_archived is False
    cache.put(config(N, is_archived=True))
    assert (await cache.get_many("p1", ["cfg"]))["cfg"].is_archived is True
    assert len(records.score_configs.reads) == 1
