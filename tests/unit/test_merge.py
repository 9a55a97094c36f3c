"""The worker-side merge (core/domain/merge.py): folding batches onto stored rows."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fathom.core.domain.ingestion import EventError, ParsedEvent, parse_event, sort_events
from fathom.core.domain.merge import (
    MergeResult,
    deep_merge,
    entity_ids,
    merge_batch,
)
from fathom.core.domain.scores import Score, ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, Observation, ObservationType, Session, Trace

PROJECT = "proj-1"
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
_ids = itertools.count(1)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(event_type: str, body: dict[str, Any], at: float = 0, event_id: str | None = None) -> Any:
    raw = {
        "id": event_id or f"ev-{next(_ids)}",
        "timestamp": iso(at),
        "type": event_type,
        "body": body,
    }
    parsed = parse_event(raw)
    assert not isinstance(parsed, EventError), parsed.error
    return parsed


def merge(
    events: list[ParsedEvent],
    stored: MergeResult | None = None,
    now: datetime = NOW,
    **kwargs: Any,
) -> MergeResult:
    traces = {x.id: x for x in stored.traces} if stored else {}
    observations = {x.id: x for x in stored.observations} if stored else {}
    scores = {x.id: x for x in stored.scores} if stored else {}
    return merge_batch(PROJECT, events, traces, observations, scores, now, **kwargs)


def one_obs(result: MergeResult) -> Observation:
    assert len(result.observations) == 1
    return result.observations[0]


def one_trace(result: MergeResult) -> Trace:
    assert len(result.traces) == 1
    return result.traces[0]


# ---------------------------------------------------------------------------- basic folding


def test_trace_with_observations_and_score() -> None:
    batch = [
        ev(
            "trace-create",
            {
                "id": "tr",
                "timestamp": iso(-1),
                "name": "chat",
                "userId": "u",
                "sessionId": "sess",
                "tags": ["b", "a"],
                "metadata": {"k": 1},
                "input": "question",
                "environment": "prod",
                "public": True,
            },
            at=0,
        ),
        ev(
            "generation-create",
            {
                "id": "gen",
                "traceId": "tr",
                "parentObservationId": "span",
                "name": "llm",
                "startTime": iso(1),
                "model": "gpt-4o",
                "modelParameters": {"temperature": 0},
                "input": [{"role": "user", "content": "q"}],
                "usage": {"input": 10, "output": 5, "inputCost": 0.01},
                "costDetails": {"output": 0.02},
                "promptName": "p",
                "promptVersion": 2,
                "environment": "prod",
            },
            at=1,
        ),
        ev(
            "generation-update",
            {
                "id": "gen",
                "traceId": "tr",
                "endTime": iso(3),
                "completionStartTime": iso(2),
                "output": "answer",
                "usageDetails": {"input": 11, "output": 6, "total": 17},
            },
            at=3,
        ),
        ev("span-create", {"id": "span", "traceId": "tr", "startTime": iso(0.5)}, at=0.5),
        ev(
            "score-create",
            {"id": "sc", "traceId": "tr", "observationId": "gen", "name": "q", "value": 0.9},
            at=4,
        ),
    ]
    result = merge(sort_events(batch))

    trace = one_trace(result)
    assert trace == Trace(
        id="tr",
        project_id=PROJECT,
        timestamp=t(-1),
        name="chat",
        user_id="u",
        session_id="sess",
        input="question",
        metadata={"k": 1},
        tags=["a", "b"],
        public=True,
        environment="prod",
        created_at=NOW,
        updated_at=NOW,
    )
    assert result.sessions == [Session("sess", PROJECT, NOW, "prod")]

    by_id = {o.id: o for o in result.observations}
    gen = by_id["gen"]
    assert (gen.type, gen.trace_id, gen.parent_observation_id) == (
        ObservationType.GENERATION,
        "tr",
        "span",
    )
    assert (gen.name, gen.model, gen.model_parameters) == ("llm", "gpt-4o", {"temperature": 0})
    assert (gen.start_time, gen.completion_start_time, gen.end_time) == (t(1), t(2), t(3))
    assert gen.input == [{"role": "user", "content": "q"}] and gen.output == "answer"
    assert gen.provided_usage_details == {"input": 11, "output": 6, "total": 17}
    assert gen.provided_cost_details == {"input": 0.01, "output": 0.02}
    assert (gen.prompt_name, gen.prompt_version, gen.prompt_id) == ("p", 2, None)
    assert gen.level is Level.DEFAULT and gen.environment == "prod"
    assert (gen.created_at, gen.updated_at) == (NOW, NOW)
    # Pricing is another module's job.
    assert gen.usage_details == {} and gen.cost_details == {} and gen.total_cost is None

    span = by_id["span"]
    assert (span.type, span.start_time, span.environment) == (
        ObservationType.SPAN,
        t(0.5),
        "default",
    )

    assert result.scores == [
        Score(
            id="sc",
            project_id=PROJECT,
            name="q",
            timestamp=t(4),
            data_type=ScoreDataType.NUMERIC,
            value=0.9,
            trace_id="tr",
            observation_id="gen",
            created_at=NOW,
            updated_at=NOW,
        )
    ]
    assert result.experiment_links == []


def test_events_without_body_id_and_sdk_logs_are_skipped() -> None:
    result = merge([ev("trace-create", {"name": "x"}), ev("sdk-log", {"log": "hi"})])
    assert result == MergeResult()


def test_trace_timestamp_falls_back_to_envelope_time() -> None:
    assert one_trace(merge([ev("trace-create", {"id": "tr"}, at=7)])).timestamp == t(7)


def test_observation_start_falls_back_to_envelope_time() -> None:
    assert one_obs(merge([ev("span-create", {"id": "s", "traceId": "t"}, at=7)])).start_time == t(7)


# ---------------------------------------------------------------------------- ordering


def test_events_are_sorted_by_envelope_time_whatever_the_input_order() -> None:
    batch = [
        ev("span-update", {"id": "s", "name": "third"}, at=3),
        ev("span-create", {"id": "s", "traceId": "t", "name": "first"}, at=1),
        ev("span-update", {"id": "s", "name": "second"}, at=2),
    ]
    assert one_obs(merge(batch)).name == "third"
    assert one_obs(merge(list(reversed(batch)))).name == "third"


def test_create_sorts_before_update_on_equal_timestamps() -> None:
    batch = [
        ev("span-update", {"id": "s", "name": "updated", "statusMessage": "done"}, at=1),
        ev("span-create", {"id": "s", "traceId": "t", "name": "created"}, at=1),
    ]
    obs = one_obs(merge(batch))
    assert obs.name == "updated" and obs.status_message == "done"


def test_update_before_create_in_the_same_batch() -> None:
    batch = [
        ev("span-update", {"id": "s", "traceId": "t", "endTime": iso(5), "output": "o"}, at=5),
        ev("span-create", {"id": "s", "traceId": "t", "startTime": iso(1), "input": "i"}, at=1),
    ]
    obs = one_obs(merge(batch))
    assert (obs.start_time, obs.end_time, obs.input, obs.output) == (t(1), t(5), "i", "o")


def test_update_before_create_across_batches() -> None:
    # The update overtakes its create: it is stored on its own first.
    first = merge(
        [
            ev(
                "generation-update",
                {
                    "id": "g",
                    "traceId": "tr",
                    "endTime": iso(5),
                    "output": "answer",
                    "usage": {"input": 3, "output": 4},
                    "level": "ERROR",
                    "statusMessage": "boom",
                },
                at=5,
            )
        ]
    )
    stored = one_obs(first)
    assert stored.start_time == t(5)  # only the update's envelope time is known yet
    assert stored.type is ObservationType.GENERATION and stored.trace_id == "tr"
    assert first.traces == []  # it has a traceId: no wrapper

    second = merge(
        [
            ev(
                "generation-create",
                {
                    "id": "g",
                    "traceId": "tr",
                    "name": "llm",
                    "startTime": iso(1),
                    "model": "gpt-4o",
                    "input": "question",
                },
                at=1,
            )
        ],
        stored=first,
        now=LATER,
    )
    obs = one_obs(second)
    assert obs.start_time == t(1)  # the create's real start wins over the fallback
    assert obs.end_time == t(5)
    assert (obs.name, obs.model, obs.input, obs.output) == ("llm", "gpt-4o", "question", "answer")
    assert obs.provided_usage_details == {"input": 3, "output": 4, "total": 7}
    assert (obs.level, obs.status_message) == (Level.ERROR, "boom")
    assert (obs.created_at, obs.updated_at) == (NOW, LATER)


def test_update_without_trace_id_before_create_across_batches() -> None:
    first = merge([ev("span-update", {"id": "s", "endTime": iso(5)}, at=5)])
    assert one_obs(first).trace_id == "s"
    assert [tr.id for tr in first.traces] == ["s"]  # wrapper, as upstream would write

    second = merge(
        [ev("span-create", {"id": "s", "traceId": "real", "startTime": iso(1)}, at=1)],
        stored=first,
    )
    obs = one_obs(second)
    assert (obs.trace_id, obs.start_time, obs.end_time) == ("real", t(1), t(5))
    assert second.traces == []


def test_children_before_parents() -> None:
    child_batch = [
        ev("span-create", {"id": "child", "traceId": "tr", "parentObservationId": "parent"}, at=2)
    ]
    first = merge(child_batch)
    assert one_obs(first).parent_observation_id == "parent"
    assert first.traces == []  # no trace row is invented for a known traceId

    second = merge(
        [
            ev("trace-create", {"id": "tr", "name": "late trace"}, at=0),
            ev("span-create", {"id": "parent", "traceId": "tr"}, at=1),
        ],
        stored=first,
    )
    assert one_trace(second).name == "late trace"
    assert [o.id for o in second.observations] == ["parent"]
    assert second.observations[0].parent_observation_id is None


# ---------------------------------------------------------------------------- idempotency


def strip_updated(result: MergeResult) -> MergeResult:
    return MergeResult(
        traces=[dataclasses.replace(x, updated_at=None) for x in result.traces],
        observations=[dataclasses.replace(x, updated_at=None) for x in result.observations],
        scores=[dataclasses.replace(x, updated_at=None) for x in result.scores],
        sessions=result.sessions,
        experiment_links=result.experiment_links,
    )


def rich_batch() -> list[ParsedEvent]:
    return [
        ev("trace-create", {"id": "tr", "tags": ["x"], "metadata": {"a": {"b": 1}}}, at=0),
        ev("trace-create", {"id": "tr", "tags": ["y"], "metadata": {"a": {"c": 2}}}, at=1),
        ev("span-create", {"id": "s", "traceId": "tr", "metadata": {"m": [1]}}, at=1),
        ev("span-update", {"id": "s", "metadata": {"n": 1}, "endTime": iso(0)}, at=2),
        ev("event-create", {"id": "e"}, at=2),
        ev(
            "score-create",
            {"id": "sc", "sessionId": "sess", "name": "n", "value": "ok", "metadata": {"z": 1}},
            at=3,
        ),
    ]


def test_replaying_a_batch_is_idempotent() -> None:
    batch = rich_batch()
    first = merge(batch, now=NOW)
    second = merge(batch, stored=first, now=LATER)
    # The wrapper trace of traceId-less "e" already exists, so it is not written again.
    assert [x.id for x in first.traces] == ["tr", "e"]
    assert strip_updated(second).traces == strip_updated(first).traces[:1]
    assert strip_updated(second).observations == strip_updated(first).observations
    assert strip_updated(second).scores == strip_updated(first).scores
    assert {x.updated_at for x in second.observations} == {LATER}
    assert {x.created_at for x in second.observations} == {NOW}


def test_repeated_envelopes_in_one_batch_change_nothing() -> None:
    batch = rich_batch()
    once = merge(batch)
    twice = merge(batch + batch)
    assert strip_updated(twice) == strip_updated(once)


def test_stored_rows_and_events_are_not_mutated() -> None:
    batch = rich_batch()
    first = merge(batch)
    snapshot = copy.deepcopy(first)
    events_snapshot = copy.deepcopy(batch)
    merge(
        [
            ev("trace-create", {"id": "tr", "tags": ["z"], "metadata": {"a": {"b": 9}}}, at=5),
            ev("span-update", {"id": "s", "metadata": {"m": {"deep": 1}}}, at=5),
        ],
        stored=first,
    )
    merge(batch, stored=first)
    assert first == snapshot
    assert batch == events_snapshot


# ---------------------------------------------------------------------------- null semantics


def test_trace_null_erases_verbatim_fields_absent_keeps_them() -> None:
    first = merge(
        [
            ev(
                "trace-create",
                {
                    "id": "tr",
                    "name": "n",
                    "userId": "u",
                    "sessionId": "s",
                    "release": "r",
                    "version": "v",
                    "public": True,
                    "metadata": {"a": 1},
                    "input": "in",
                },
            )
        ]
    )
    second = merge(
        [ev("trace-create", {"id": "tr", "name": None, "userId": None, "public": None}, at=1)],
        stored=first,
    )
    trace = one_trace(second)
    assert (trace.name, trace.user_id) == (None, None)
    assert (trace.session_id, trace.release, trace.version) == ("s", "r", "v")
    assert trace.public is True and trace.metadata == {"a": 1} and trace.input == "in"


def test_observation_null_semantics() -> None:
    first = merge(
        [
            ev(
                "generation-create",
                {
                    "id": "g",
                    "traceId": "tr",
                    "name": "n",
                    "level": "WARNING",
                    "model": "m",
                    "statusMessage": "sm",
                    "parentObservationId": "p",
                    "version": "v",
                    "endTime": iso(2),
                    "completionStartTime": iso(1),
                    "modelParameters": {"t": 1},
                },
            )
        ]
    )
    nulls = {
        "id": "g",
        "name": None,
        "level": None,
        "model": None,
        "statusMessage": None,
        "parentObservationId": None,
        "version": None,
        "endTime": None,
        "completionStartTime": None,
        "modelParameters": None,
        "input": None,
        "output": None,
        "metadata": None,
    }
    obs = one_obs(merge([ev("generation-update", nulls, at=3)], stored=first))
    # Verbatim fields are erased (level falls back to DEFAULT)...
    assert (obs.name, obs.model, obs.level) == (None, None, Level.DEFAULT)
    # ...the others ignore null.
    assert (obs.status_message, obs.parent_observation_id, obs.version) == ("sm", "p", "v")
    assert (obs.end_time, obs.completion_start_time) == (t(2), t(1))
    assert obs.model_parameters == {"t": 1}


def test_absent_fields_never_erase() -> None:
    first = merge(
        [
            ev(
                "generation-create",
                {"id": "g", "traceId": "tr", "name": "n", "model": "m", "level": "ERROR"},
            )
        ]
    )
    obs = one_obs(merge([ev("generation-update", {"id": "g"}, at=1)], stored=first))
    assert (obs.name, obs.model, obs.level) == ("n", "m", Level.ERROR)


def test_empty_usage_and_cost_never_erase() -> None:
    first = merge(
        [
            ev(
                "generation-create",
                {"id": "g", "usage": {"input": 1}, "costDetails": {"total": 0.5}},
            )
        ]
    )
    obs = one_obs(
        merge(
            [
                ev(
                    "generation-update",
                    {"id": "g", "usage": {}, "usageDetails": {}, "costDetails": {}},
                    at=1,
                )
            ],
            stored=first,
        )
    )
    assert obs.provided_usage_details == {"input": 1, "total": 1}
    assert obs.provided_cost_details == {"total": 0.5}


def test_later_usage_replaces_the_whole_map() -> None:
    batch = [
        ev("generation-create", {"id": "g", "usageDetails": {"input": 1, "cache": 2}}, at=0),
        ev("generation-update", {"id": "g", "usageDetails": {"output": 3}}, at=1),
    ]
    assert one_obs(merge(batch)).provided_usage_details == {"output": 3}


def test_usage_hooks_receive_the_raw_values() -> None:
    seen: list[tuple[Any, Any]] = []

    def usage_hook(usage: Any, details: Any) -> dict[str, int] | None:
        seen.append((usage, details))
        return {"input": 42}

    def cost_hook(usage: Any, details: Any) -> dict[str, float] | None:
        return {"total": 1.5}

    batch = [
        ev(
            "generation-create",
            {
                "id": "g",
                "usageDetails": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                "costDetails": {"total": 9},
            },
        ),
        ev("generation-update", {"id": "g", "name": "no usage here"}, at=1),
    ]
    obs = one_obs(merge(batch, normalize_usage=usage_hook, normalize_cost=cost_hook))
    assert seen == [(None, {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})]
    assert obs.provided_usage_details == {"input": 42}
    assert obs.provided_cost_details == {"total": 1.5}


def test_usage_and_cost_follow_the_usage_rules_by_default() -> None:
    # OpenAI-shaped details become input/output/total; legacy cost keys map to their types.
    batch = [
        ev(
            "generation-create",
            {
                "id": "g",
                "usage": {"inputCost": 1, "totalCost": 2.5},
                "usageDetails": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            },
        )
    ]
    obs = one_obs(merge(batch))
    assert obs.provided_usage_details == {"input": 5, "output": 2, "total": 7}
    assert obs.provided_cost_details == {"input": 1.0, "total": 2.5}


# ---------------------------------------------------------------------------- merge rules


def test_metadata_is_deep_merged() -> None:
    first = merge(
        [ev("span-create", {"id": "s", "metadata": {"a": {"x": 1, "y": 1}, "b": 1, "c": [1, 2]}})]
    )
    obs = one_obs(
        merge(
            [
                ev("span-update", {"id": "s", "metadata": {"a": {"y": 2, "z": 3}, "c": [9]}}, at=1),
                ev("span-update", {"id": "s", "metadata": {"b": None, "d": {"e": 1}}}, at=2),
            ],
            stored=first,
        )
    )
    assert obs.metadata == {"a": {"x": 1, "y": 2, "z": 3}, "b": None, "c": [9], "d": {"e": 1}}


def test_deep_merge_helper() -> None:
    base = {"a": {"b": {"c": 1}}, "k": {"v": 1}}
    update = {"a": {"b": {"d": 2}}, "k": "flat"}
    assert deep_merge(base, update) == {"a": {"b": {"c": 1, "d": 2}}, "k": "flat"}
    assert base == {"a": {"b": {"c": 1}}, "k": {"v": 1}}


def test_tags_are_a_sorted_union() -> None:
    first = merge([ev("trace-create", {"id": "tr", "tags": ["m", "a"]})])
    second = merge(
        [
            ev("trace-create", {"id": "tr", "tags": ["z", "a"]}, at=1),
            ev("trace-create", {"id": "tr", "tags": ["b"]}, at=2),
            ev("trace-create", {"id": "tr"}, at=3),
        ],
        stored=first,
    )
    assert one_trace(second).tags == ["a", "b", "m", "z"]


def test_input_output_take_the_last_non_empty_value() -> None:
    first = merge([ev("span-create", {"id": "s", "input": "stored-in", "output": "stored-out"})])
    obs = one_obs(
        merge(
            [
                ev("span-update", {"id": "s", "output": {"v": 1}}, at=1),
                ev("span-update", {"id": "s", "output": ""}, at=2),
                ev("span-update", {"id": "s", "output": 0}, at=3),
                ev("span-update", {"id": "s", "output": False}, at=4),
                ev("span-update", {"id": "s", "output": None}, at=5),
            ],
            stored=first,
        )
    )
    assert obs.input == "stored-in"
    assert obs.output == {"v": 1}
    # An empty object is truthy in JavaScript, so upstream keeps it.
    obs = one_obs(merge([ev("span-update", {"id": "s", "output": {}}, at=6)], stored=first))
    assert obs.output == {}


def test_trace_input_output() -> None:
    batch = [
        ev("trace-create", {"id": "tr", "input": "a", "output": "x"}, at=0),
        ev("trace-create", {"id": "tr", "input": "b"}, at=1),
        ev("trace-create", {"id": "tr", "input": ""}, at=2),
    ]
    trace = one_trace(merge(batch))
    assert (trace.input, trace.output) == ("b", "x")


def test_end_time_before_start_is_clamped() -> None:
    obs = one_obs(merge([ev("span-create", {"id": "s", "startTime": iso(10), "endTime": iso(4)})]))
    assert obs.end_time == obs.start_time == t(10)


def test_level_defaults_to_default() -> None:
    assert one_obs(merge([ev("span-create", {"id": "s"})])).level is Level.DEFAULT


def test_observation_type_comes_from_the_create() -> None:
    batch = [
        ev("agent-create", {"id": "a", "traceId": "tr"}, at=0),
        ev("generation-update", {"id": "a", "model": "m"}, at=1),
    ]
    assert one_obs(merge(batch)).type is ObservationType.AGENT
    legacy = [ev("observation-update", {"id": "o", "type": "EVENT"}, at=0)]
    assert one_obs(merge(legacy)).type is ObservationType.EVENT
    stored = merge([ev("span-update", {"id": "x", "traceId": "tr"}, at=5)])
    later = merge([ev("tool-create", {"id": "x", "traceId": "tr"}, at=1)], stored=stored)
    assert one_obs(later).type is ObservationType.TOOL


def test_prompt_link_follows_the_last_event_carrying_it() -> None:
    first = merge([ev("generation-create", {"id": "g", "promptName": "p", "promptVersion": 1})])
    resolved = dataclasses.replace(one_obs(first), prompt_id="prompt-row-1")
    stored = MergeResult(observations=[resolved])
    same = one_obs(merge([ev("generation-update", {"id": "g", "name": "x"}, at=1)], stored=stored))
    assert (same.prompt_id, same.prompt_name, same.prompt_version) == ("prompt-row-1", "p", 1)
    changed = one_obs(
        merge(
            [ev("generation-update", {"id": "g", "promptName": "p", "promptVersion": 2}, at=1)],
            stored=stored,
        )
    )
    assert (changed.prompt_id, changed.prompt_name, changed.prompt_version) == (None, "p", 2)


# ---------------------------------------------------------------------------- wrapper traces


def test_missing_trace_id_creates_a_wrapper_trace() -> None:
    result = merge(
        [ev("generation-create", {"id": "g", "startTime": iso(3), "environment": "dev"}, at=4)]
    )
    obs = one_obs(result)
    assert obs.trace_id == "g"
    assert result.traces == [
        Trace(
            id="g",
            project_id=PROJECT,
            timestamp=t(3),
            environment="dev",
            created_at=NOW,
            updated_at=NOW,
        )
    ]


def test_wrapper_trace_is_not_rewritten_when_it_exists() -> None:
    first = merge([ev("span-create", {"id": "s"})])
    second = merge([ev("span-update", {"id": "s", "output": "o"}, at=1)], stored=first)
    assert one_obs(second).trace_id == "s"
    assert second.traces == []


def test_wrapper_trace_merges_with_a_trace_event_of_the_same_id() -> None:
    result = merge(
        [ev("trace-create", {"id": "s", "name": "explicit"}), ev("span-create", {"id": "s"})]
    )
    assert [(tr.id, tr.name) for tr in result.traces] == [("s", "explicit")]


def test_entity_ids() -> None:
    batch = [
        ev("trace-create", {"id": "tr"}),
        ev("span-create", {"id": "s1", "traceId": "tr"}),
        ev("span-create", {"id": "s2"}),
        ev("score-create", {"id": "sc", "traceId": "tr", "name": "n", "value": 1}),
        ev("sdk-log", {"log": 1}),
        ev("trace-create", {}),
    ]
    assert entity_ids(batch) == ({"tr", "s2"}, {"s1", "s2"}, {"sc"})


# ---------------------------------------------------------------------------- immutable keys


def test_trace_immutable_keys_first_defined_wins() -> None:
    batch = [
        ev("trace-create", {"id": "tr", "timestamp": iso(1), "environment": "first"}, at=1),
        ev("trace-create", {"id": "tr", "timestamp": iso(0), "environment": "second"}, at=2),
    ]
    first = merge(batch)
    trace = one_trace(first)
    assert (trace.timestamp, trace.environment, trace.created_at) == (t(1), "first", NOW)
    again = one_trace(
        merge(
            [ev("trace-create", {"id": "tr", "timestamp": iso(-5), "environment": "third"}, at=3)],
            stored=first,
            now=LATER,
        )
    )
    assert (again.timestamp, again.environment, again.created_at) == (t(1), "first", NOW)
    assert (again.id, again.project_id) == ("tr", PROJECT)


def received(event: Any, at: datetime) -> Any:
    event.received_at = at
    return event


def test_created_at_is_when_the_oldest_batch_was_accepted() -> None:
    # A backlog processed an hour late keeps its arrival time, as upstream's created_at is the
    # oldest event file's time; sessions and wrapper traces share it.
    batch = [
        received(ev("trace-create", {"id": "tr", "sessionId": "s"}, at=1), t(20)),
        received(ev("trace-create", {"id": "tr", "name": "n"}, at=2), t(10)),
        received(ev("span-create", {"id": "sp", "traceId": "tr"}), t(30)),
        received(ev("span-create", {"id": "orphan"}), t(40)),
        received(ev("score-create", {"id": "sc", "traceId": "tr", "name": "n", "value": 1}), t(50)),
    ]
    result = merge(batch, now=LATER)
    assert {x.id: x.created_at for x in result.traces} == {"tr": t(10), "orphan": t(40)}
    assert {x.id: x.created_at for x in result.observations} == {"sp": t(30), "orphan": t(40)}
    assert [x.created_at for x in result.scores] == [t(50)]
    assert [(x.id, x.created_at) for x in result.sessions] == [("s", t(10))]
    assert {x.updated_at for x in result.traces} == {LATER}
    # A stored row keeps its own; events without a receipt time fall back to the merge time.
    again = merge([received(ev("trace-create", {"id": "tr"}), t(99))], stored=result)
    assert one_trace(again).created_at == t(10)
    assert one_trace(merge([ev("trace-create", {"id": "new"})])).created_at == NOW


def test_observation_immutable_keys_first_defined_wins() -> None:
    first = merge(
        [
            ev(
                "span-create", {"id": "s", "traceId": "t1", "startTime": iso(1), "environment": "a"}
            ),
            ev(
                "span-update",
                {"id": "s", "traceId": "t2", "startTime": iso(0), "environment": "b"},
                at=1,
            ),
        ]
    )
    obs = one_obs(first)
    assert (obs.trace_id, obs.start_time, obs.environment) == ("t1", t(1), "a")
    again = one_obs(
        merge(
            [
                ev(
                    "span-update",
                    {"id": "s", "traceId": "t3", "startTime": iso(-1), "environment": "c"},
                    at=2,
                )
            ],
            stored=first,
            now=LATER,
        )
    )
    assert (again.trace_id, again.start_time, again.environment, again.created_at) == (
        "t1",
        t(1),
        "a",
        NOW,
    )


def test_score_immutable_keys_and_later_wins() -> None:
    first = merge(
        [
            ev(
                "score-create",
                {
                    "id": "sc",
                    "traceId": "t1",
                    "name": "a",
                    "value": 1,
                    "environment": "x",
                    "comment": "c1",
                },
                at=1,
            )
        ]
    )
    second = merge(
        [
            ev(
                "score-create",
                {
                    "id": "sc",
                    "traceId": "t2",
                    "observationId": "o",
                    "name": "b",
                    "value": "good",
                    "environment": "y",
                    "source": "ANNOTATION",
                },
                at=0,
            )
        ],
        stored=first,
        now=LATER,
    )
    sc = second.scores[0]
    assert (sc.timestamp, sc.trace_id, sc.environment, sc.created_at) == (t(1), "t1", "x", NOW)
    assert (sc.name, sc.data_type, sc.value, sc.string_value) == (
        "b",
        ScoreDataType.CATEGORICAL,
        None,
        "good",
    )
    assert (sc.observation_id, sc.source, sc.comment) == ("o", ScoreSource.ANNOTATION, "c1")
    assert sc.updated_at == LATER


def test_score_timestamp_prefers_the_body_timestamp() -> None:
    body = {"id": "sc", "traceId": "t", "name": "n", "value": 1, "timestamp": iso(-30)}
    assert merge([ev("score-create", body, at=5)]).scores[0].timestamp == t(-30)
    del body["timestamp"]
    assert merge([ev("score-create", body, at=5)]).scores[0].timestamp == t(5)


def test_score_metadata_deep_merges() -> None:
    batch = [
        ev(
            "score-create",
            {"id": "sc", "traceId": "t", "name": "n", "value": 1, "metadata": {"a": {"b": 1}}},
            at=0,
        ),
        ev(
            "score-create",
            {"id": "sc", "traceId": "t", "name": "n", "value": 2, "metadata": {"a": {"c": 2}}},
            at=1,
        ),
    ]
    sc = merge(batch).scores[0]
    assert sc.metadata == {"a": {"b": 1, "c": 2}} and sc.value == 2.0


# ---------------------------------------------------------------------------- side outputs


def test_sessions_are_listed_once() -> None:
    result = merge(
        [
            ev("trace-create", {"id": "a", "sessionId": "s", "environment": "prod"}),
            ev("trace-create", {"id": "b", "sessionId": "s"}),
            ev("trace-create", {"id": "c"}),
        ]
    )
    assert result.sessions == [Session("s", PROJECT, NOW, "prod")]


def test_experiment_links_come_from_otlp_bodies() -> None:
    experiment = {"id": "run-1", "item_id": "item-1", "name": "exp"}
    result = merge(
        [
            ev("span-create", {"id": "s", "traceId": "tr", "experiment": experiment}),
            ev("span-create", {"id": "plain", "traceId": "tr"}),
        ]
    )
    assert result.experiment_links == [("s", "tr", experiment)]


@pytest.mark.parametrize("stored_created_at", [None, T0])
def test_created_at_comes_from_the_stored_row(stored_created_at: datetime | None) -> None:
    stored_trace = Trace(id="tr", project_id=PROJECT, timestamp=T0, created_at=stored_created_at)
    result = merge_batch(
        PROJECT, [ev("trace-create", {"id": "tr", "name": "n"})], {"tr": stored_trace}, {}, {}, NOW
    )
    assert one_trace(result).created_at == (stored_created_at or NOW)
    assert stored_trace.name is None
