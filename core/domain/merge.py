"""The worker-side merge: fold one batch's parsed events onto the stored rows.

This is upstream's `IngestionService.mergeAndWrite` without the I/O. Per entity the stored row
comes first, then the batch's events sorted by envelope timestamp (creates before others on
ties), with these rules:

* immutable keys keep the first defined value (traces: id, project_id, timestamp, created_at,
  environment; observations: id, project_id, trace_id, start_time, created_at, environment;
  scores: id, project_id, timestamp, trace_id, created_at, environment);
* every other field: the later value wins, except absent values and empty objects. An explicit
  `null` erases the verbatim fields (trace name/userId/sessionId/release/version, observation
  name/level/model) but never statusMessage/parentObservationId/version/endTime/
  completionStartTime;
* metadata is deep-merged, tags are the sorted union, input/output are the last non-empty value
  of the batch (else the stored one);
* observations: end_time before start_time is clamped, level defaults to DEFAULT, the type comes
  from the event type, a missing traceId gets a wrapper trace whose id is the observation's.
* a new row's created_at is when its oldest batch was accepted (the events' `received_at`,
  upstream's oldest event file time), else the merge time.

Two deliberate refinements over upstream, both for an update that arrives (and is stored)
before its create: a create whose start time is earlier than the stored start_time replaces it
(a start derived from an update's envelope time is always later than the real start), and a
stored wrapper trace id (trace_id == observation id) gives way to a real traceId.

Deliberate differences where upstream's behaviour is an artifact of its storage or of filling
required columns:
* a trace event without `public` keeps the stored flag, and `bookmarked` is never touched
  (upstream writes `public ?? false` and `bookmarked: false` with every trace event, so an SDK
  update or a child span's partial trace event would unshare or unbookmark the trace);
* an observation's type comes from its creates: span-/generation-/observation-update events
  never turn an AGENT (or any created type) into a SPAN or GENERATION;
* stored metadata merges as deeply as the batch's own (upstream stores nested values as JSON
  text, so across batches only top-level keys merge), and lists replace rather than merge
  index by index as lodash does within one batch;
* a score's value, string value and data type change together, and its timestamp prefers the
  body's `timestamp` the SDKs send (see `core.domain.ingestion`);
* a wrapper trace is written only when no trace of that id exists yet (upstream rewrites it,
  blank, on every merge of a traceId-less observation).

Sessions are upserted like upstream's `trace_sessions`: from the batch's last trace event that
names a session, with that event's environment.

Pricing (usage_details, cost_details, total_cost, internal_model_id) and prompt id resolution
happen afterwards in other modules; this one only records what the client provided.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fathom.core.domain.ingestion import (
    UNSET,
    EntityKind,
    ObservationEvent,
    ParsedEvent,
    ScoreEvent,
    TraceEvent,
)
from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Level, Observation, Session, Trace
from fathom.core.domain.usage import provided_cost_details, provided_usage_details

# (usage, usageDetails) of one event → provided usage details; (usage, costDetails) → costs.
UsageNormalizer = Callable[[Any, Any], dict[str, int] | None]
CostNormalizer = Callable[[Any, Any], dict[str, float] | None]


@dataclass(slots=True)
class MergeResult:
    """Rows to upsert. Wrapper traces for traceId-less observations are in `traces`."""

    traces: list[Trace] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    # Sessions named by merged traces (upsert, do nothing on conflict).
    sessions: list[Session] = field(default_factory=list)
    # (observation id, trace id, experiment attributes) from OTLP-derived bodies.
    experiment_links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def entity_ids(events: Iterable[ParsedEvent]) -> tuple[set[str], set[str], set[str]]:
    """Ids to load from storage before `merge_batch`: (trace ids, observation ids, score ids).

    Trace ids include the ids of observations sent without a traceId: their wrapper trace may
    already exist.
    """
    trace_ids: set[str] = set()
    observation_ids: set[str] = set()
    score_ids: set[str] = set()
    for event in events:
        entity_id = event.id
        if not entity_id:
            continue
        kind = event.kind
        if kind is EntityKind.OBSERVATION:
            observation_ids.add(entity_id)
            if not event.trace_id:  # type: ignore[union-attr]
                trace_ids.add(entity_id)
        elif kind is EntityKind.TRACE:
            trace_ids.add(entity_id)
        elif kind is EntityKind.SCORE:
            score_ids.add(entity_id)
    return trace_ids, observation_ids, score_ids


def merge_batch(
    project_id: str,
    events: Iterable[ParsedEvent],
    stored_traces: Mapping[str, Trace],
    stored_observations: Mapping[str, Observation],
    stored_scores: Mapping[str, Score],
    now: datetime,
    *,
    normalize_usage: UsageNormalizer = provided_usage_details,
    normalize_cost: CostNormalizer = provided_cost_details,
) -> MergeResult:
    """Fold a batch (any order) onto the stored rows; stored objects are never mutated."""
    trace_groups: dict[str, list[TraceEvent]] = {}
    observation_groups: dict[str, list[ObservationEvent]] = {}
    score_groups: dict[str, list[ScoreEvent]] = {}
    for event in events:
        entity_id = event.id
        if not entity_id:
            continue  # upstream accepts id-less bodies but never processes them
        kind = event.kind
        groups: dict[str, list[Any]]
        if kind is EntityKind.OBSERVATION:
            groups = observation_groups
        elif kind is EntityKind.TRACE:
            groups = trace_groups
        elif kind is EntityKind.SCORE:
            groups = score_groups
        else:
            continue
        group = groups.get(entity_id)
        if group is None:
            groups[entity_id] = [event]
        else:
            group.append(event)

    result = MergeResult()
    traces = result.traces
    merged_trace_ids: set[str] = set()
    seen_sessions: set[str] = set()
    for trace_id, trace_events in trace_groups.items():
        trace_events = _sorted(trace_events)
        trace = _merge_sorted_trace(
            project_id, trace_id, trace_events, stored_traces.get(trace_id), now
        )
        traces.append(trace)
        merged_trace_ids.add(trace_id)
        for event in reversed(trace_events):
            session_id = event.session_id
            if type(session_id) is str and session_id:
                if session_id not in seen_sessions:
                    seen_sessions.add(session_id)
                    result.sessions.append(
                        Session(session_id, project_id, trace.created_at or now, event.environment)
                    )
                break

    for observation_id, observation_events in observation_groups.items():
        observation, needs_wrapper, experiment = merge_observation(
            project_id,
            observation_id,
            observation_events,
            stored_observations.get(observation_id),
            now,
            normalize_usage=normalize_usage,
            normalize_cost=normalize_cost,
        )
        result.observations.append(observation)
        if (
            needs_wrapper
            and observation_id not in merged_trace_ids
            and observation_id not in stored_traces
        ):
            merged_trace_ids.add(observation_id)
            traces.append(
                Trace(
                    id=observation_id,
                    project_id=project_id,
                    timestamp=observation.start_time,
                    environment=observation.environment,
                    created_at=observation.created_at,
                    updated_at=now,
                )
            )
        if experiment is not None:
            result.experiment_links.append((observation_id, observation.trace_id, experiment))

    for score_id, score_events in score_groups.items():
        result.scores.append(
            merge_score(project_id, score_id, score_events, stored_scores.get(score_id), now)
        )
    return result


def _received(
    events: Sequence[TraceEvent] | Sequence[ObservationEvent] | Sequence[ScoreEvent],
    now: datetime,
) -> datetime:
    """A new row's `created_at`: when the oldest of its batches was accepted (upstream takes
    the oldest event file's time), so a backlog processed late keeps its arrival time."""
    received = [e.received_at for e in events if e.received_at is not None]
    return min(received) if received else now


def _time_order(event: ParsedEvent) -> tuple[datetime, bool]:
    # Envelope time first; on ties creates (is_update False) sort before updates.
    return event.timestamp, event.is_update


def _sorted(events: list[Any]) -> list[Any]:
    return sorted(events, key=_time_order) if len(events) > 1 else events


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """lodash `merge` for JSON objects: nested objects merge, anything else replaces.

    Returns a new dict and never mutates its arguments (they may be stored rows or events).
    """
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if type(value) is dict and type(current) is dict:
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _present(value: Any) -> bool:
    """JavaScript truthiness, the test upstream uses to pick the last input/output."""
    return value is not None and value is not False and value != "" and value != 0


def _merge_sorted_trace(
    project_id: str,
    trace_id: str,
    events: list[TraceEvent],
    stored: Trace | None,
    now: datetime,
) -> Trace:
    if stored is not None:
        trace = copy.copy(stored)
        if trace.created_at is None:
            trace.created_at = _received(events, now)
    else:
        first = events[0]
        trace = Trace(trace_id, project_id, first.body_timestamp or first.timestamp)
        trace.environment = first.environment
        trace.created_at = _received(events, now)
    new_input: Any = None
    new_output: Any = None
    tags: set[str] | None = None
    for event in events:
        if event.name is not UNSET:
            trace.name = event.name
        if event.user_id is not UNSET:
            trace.user_id = event.user_id
        if event.session_id is not UNSET:
            trace.session_id = event.session_id
        if event.release is not UNSET:
            trace.release = event.release
        if event.version is not UNSET:
            trace.version = event.version
        if event.public is not None:
            trace.public = event.public
        if event.metadata:
            trace.metadata = (
                deep_merge(trace.metadata, event.metadata) if trace.metadata else event.metadata
            )
        if event.tags:
            if tags is None:
                tags = set(trace.tags)
            tags.update(event.tags)
        if _present(event.input):
            new_input = event.input
        if _present(event.output):
            new_output = event.output
    if tags is not None:
        trace.tags = sorted(tags)
    if new_input is not None:
        trace.input = new_input
    if new_output is not None:
        trace.output = new_output
    trace.updated_at = now
    return trace


def merge_observation(
    project_id: str,
    observation_id: str,
    events: list[ObservationEvent],
    stored: Observation | None,
    now: datetime,
    *,
    normalize_usage: UsageNormalizer = provided_usage_details,
    normalize_cost: CostNormalizer = provided_cost_details,
) -> tuple[Observation, bool, dict[str, Any] | None]:
    """Returns (observation, needs a wrapper trace, last experiment attributes or None)."""
    events = _sorted(events)
    trace_id: str | None = None
    if stored is not None:
        observation = copy.copy(stored)
        if observation.created_at is None:
            observation.created_at = _received(events, now)
        if stored.trace_id and stored.trace_id != observation_id:
            trace_id = stored.trace_id
        level: Level | None = observation.level
    else:
        first = events[0]
        # Positional plus assignments: keywords cost ~1 µs more on this 31-field dataclass.
        observation = Observation(
            observation_id, project_id, "", first.type, first.start_time or first.timestamp
        )
        observation.environment = first.environment
        observation.created_at = _received(events, now)
        level = None
    for event in events:
        if not event.is_update:
            # The row so far may stem from an update that overtook its create; an update's
            # fallback start (its envelope time) is never earlier than the real start.
            start_time = event.start_time or event.timestamp
            if start_time < observation.start_time:
                observation.start_time = start_time
            break

    new_input: Any = None
    new_output: Any = None
    experiment: dict[str, Any] | None = None
    for event in events:
        if trace_id is None and event.trace_id:
            trace_id = event.trace_id
        if not event.is_update:
            # Updates only say "span" or "generation"; an AGENT stays an AGENT.
            observation.type = event.type
        if event.name is not UNSET:
            observation.name = event.name
        if event.level is not UNSET:
            level = event.level
        if event.model is not UNSET:
            observation.model = event.model
        if event.end_time is not None:
            observation.end_time = event.end_time
        if event.completion_start_time is not None:
            observation.completion_start_time = event.completion_start_time
        if event.status_message is not None:
            observation.status_message = event.status_message
        if event.parent_observation_id is not None:
            observation.parent_observation_id = event.parent_observation_id
        if event.version is not None:
            observation.version = event.version
        if event.metadata:
            observation.metadata = (
                deep_merge(observation.metadata, event.metadata)
                if observation.metadata
                else event.metadata
            )
        if event.model_parameters:
            observation.model_parameters = event.model_parameters
        if event.usage is not None or event.usage_details is not None:
            usage = normalize_usage(event.usage, event.usage_details)
            if usage:
                observation.provided_usage_details = usage
        if event.usage is not None or event.cost_details is not None:
            cost = normalize_cost(event.usage, event.cost_details)
            if cost:
                observation.provided_cost_details = cost
        if event.prompt_name and event.prompt_version is not None:
            if (
                event.prompt_name != observation.prompt_name
                or event.prompt_version != observation.prompt_version
            ):
                observation.prompt_id = None  # to be resolved again by the prompt lookup
            observation.prompt_name = event.prompt_name
            observation.prompt_version = event.prompt_version
        if _present(event.input):
            new_input = event.input
        if _present(event.output):
            new_output = event.output
        if event.experiment:
            experiment = event.experiment

    if new_input is not None:
        observation.input = new_input
    if new_output is not None:
        observation.output = new_output
    observation.level = level or Level.DEFAULT
    end_time = observation.end_time
    if end_time is not None and end_time < observation.start_time:
        observation.end_time = observation.start_time
    needs_wrapper = trace_id is None
    observation.trace_id = observation_id if trace_id is None else trace_id
    observation.updated_at = now
    return observation, needs_wrapper, experiment


def merge_score(
    project_id: str,
    score_id: str,
    events: list[ScoreEvent],
    stored: Score | None,
    now: datetime,
) -> Score:
    events = _sorted(events)
    if stored is not None:
        score = copy.copy(stored)
        if score.created_at is None:
            score.created_at = _received(events, now)
    else:
        first = events[0]
        score = Score(
            id=score_id,
            project_id=project_id,
            name=first.name,
            timestamp=first.body_timestamp or first.timestamp,
            data_type=first.data_type,
            environment=first.environment,
            trace_id=first.trace_id,
            created_at=_received(events, now),
        )
    for event in events:
        score.name = event.name
        # Value, string value and type describe one thing: they change together.
        score.data_type = event.data_type
        score.value = event.value
        score.string_value = event.string_value
        score.source = event.source
        if score.trace_id is None:
            score.trace_id = event.trace_id
        if event.observation_id is not None:
            score.observation_id = event.observation_id
        if event.session_id is not None:
            score.session_id = event.session_id
        if event.dataset_run_id is not None:
            score.dataset_run_id = event.dataset_run_id
        if event.comment is not None:
            score.comment = event.comment
        if event.config_id is not None:
            score.config_id = event.config_id
        # Upstream writes `queueId ?? null`: a score re-sent without a queue leaves it.
        score.queue_id = event.queue_id
        if event.execution_trace_id is not None:
            score.execution_trace_id = event.execution_trace_id
        if event.metadata:
            score.metadata = (
                deep_merge(score.metadata, event.metadata) if score.metadata else event.metadata
            )
    score.updated_at = now
    return score
