"""The official SDK's score configs, comments and annotation queues against a live server,
and scores validated against a config: the valid one stored, the invalid one rejected."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from langfuse import Langfuse
from langfuse.api import ConfigCategory

from tests.sdk.conftest import poll


def scores_of_config(api: httpx.Client, config_id: str) -> dict[str, dict[str, Any]]:
    response = api.get("/api/public/v3/scores", params={"configId": config_id, "fields": "details"})
    assert response.status_code == 200, response.text
    return {score["id"]: score for score in response.json()["data"]}


def test_score_configs_round_trip(langfuse: Langfuse) -> None:
    name = f"tone-{uuid.uuid4().hex[:8]}"
    created = langfuse.api.score_configs.create(
        name=name,
        data_type="CATEGORICAL",
        categories=[ConfigCategory(label="calm", value=0), ConfigCategory(label="rude", value=1)],
        description="How the answer sounds",
    )
    assert created.name == name and created.data_type == "CATEGORICAL"
    assert [c.label for c in created.categories or []] == ["calm", "rude"]
    assert created.is_archived is False

    fetched = langfuse.api.score_configs.get_by_id(created.id)
    assert fetched.id == created.id and fetched.description == "How the answer sounds"
    listed = langfuse.api.score_configs.get(page=1, limit=100)
    assert created.id in {config.id for config in listed.data}

    archived = langfuse.api.score_configs.update(created.id, is_archived=True)
    assert archived.is_archived is True
    boolean = langfuse.api.score_configs.create(name=f"ok-{name}", data_type="BOOLEAN")
    assert [(c.label, c.value) for c in boolean.categories or []] == [
        ("True", 1),
        ("False", 0),
    ]


def test_scores_are_validated_against_their_config(
    langfuse: Langfuse, api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    config = langfuse.api.score_configs.create(
        name=f"helpful-{uuid.uuid4().hex[:8]}", data_type="NUMERIC", min_value=0, max_value=1
    )
    trace_id = langfuse.create_trace_id()
    valid_id, invalid_id = uuid.uuid4().hex, uuid.uuid4().hex
    with caplog.at_level(logging.ERROR, logger="langfuse"):
        langfuse.create_score(
            name="whatever", value=0.5, trace_id=trace_id, config_id=config.id, score_id=valid_id
        )
        langfuse.create_score(
            name="whatever", value=5, trace_id=trace_id, config_id=config.id, score_id=invalid_id
        )
        langfuse.flush()

    stored = poll(lambda: scores_of_config(api, config.id), lambda found: valid_id in found)
    # Both went in one request: the valid score's arrival means the invalid one was refused.
    assert invalid_id not in stored
    valid = stored[valid_id]
    assert valid["name"] == config.name  # the config's name replaces the score's
    assert (valid["dataType"], valid["value"], valid["configId"]) == ("NUMERIC", 0.5, config.id)
    assert "Value exceeds maximum value of 1 defined in config" in caplog.text


def test_categorical_config_scores(langfuse: Langfuse, api: httpx.Client) -> None:
    config = langfuse.api.score_configs.create(
        name=f"verdict-{uuid.uuid4().hex[:8]}",
        data_type="CATEGORICAL",
        categories=[ConfigCategory(label="good", value=1), ConfigCategory(label="bad", value=0)],
    )
    trace_id = langfuse.create_trace_id()
    good_id, unknown_id = uuid.uuid4().hex, uuid.uuid4().hex
    langfuse.create_score(
        name="v", value="good", trace_id=trace_id, config_id=config.id, score_id=good_id
    )
    langfuse.create_score(
        name="v", value="great", trace_id=trace_id, config_id=config.id, score_id=unknown_id
    )
    langfuse.flush()
    stored = poll(lambda: scores_of_config(api, config.id), lambda found: good_id in found)
    assert unknown_id not in stored
    assert stored[good_id]["dataType"] == "CATEGORICAL"
    assert stored[good_id]["value"] == "good"


def test_comments_and_annotation_queues_through_the_sdk(
    langfuse: Langfuse, api: httpx.Client
) -> None:
    with langfuse.start_as_current_observation(name="to-review") as span:
        trace_id = span.trace_id
    langfuse.flush()
    poll(lambda: api.get(f"/api/public/traces/{trace_id}"), lambda r: r.status_code == 200)

    created = langfuse.api.comments.create(
        project_id="ignored", object_type="TRACE", object_id=trace_id, content="check this"
    )
    comment = langfuse.api.comments.get_by_id(created.id)
    assert (comment.object_type, comment.object_id, comment.content) == (
        "TRACE",
        trace_id,
        "check this",
    )
    listed = langfuse.api.comments.get(object_type="TRACE", object_id=trace_id)
    assert [c.id for c in listed.data] == [created.id]

    config = langfuse.api.score_configs.create(
        name=f"review-{uuid.uuid4().hex[:8]}", data_type="BOOLEAN"
    )
    queue = langfuse.api.annotation_queues.create_queue(
        name=f"queue-{uuid.uuid4().hex[:8]}", score_config_ids=[config.id]
    )
    assert queue.score_config_ids == [config.id] and queue.description is None
    item = langfuse.api.annotation_queues.create_queue_item(
        queue.id, object_id=trace_id, object_type="TRACE"
    )
    assert item.status == "PENDING" and item.completed_at is None
    done = langfuse.api.annotation_queues.update_queue_item(queue.id, item.id, status="COMPLETED")
    assert done.status == "COMPLETED" and done.completed_at is not None
    items = langfuse.api.annotation_queues.list_queue_items(queue.id, status="COMPLETED")
    assert [i.id for i in items.data] == [item.id]
    deleted = langfuse.api.annotation_queues.delete_queue_item(queue.id, item.id)
    assert deleted.success is True
    assert langfuse.api.annotation_queues.get_queue(queue.id).name == queue.name
