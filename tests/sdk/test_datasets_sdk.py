"""The official `langfuse` SDK 5.x with datasets and `run_experiment` against a live server.

`run_experiment` records the run only through span attributes and scores; the worker turns
them into a dataset run, which the REST API reads back here.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from langfuse import Evaluation, Langfuse

from tests.sdk.conftest import poll as poll_api

# Experiments reach the API only after the worker turned their spans into a dataset run.
poll = partial(poll_api, timeout=30, interval=0.2)


def json_of(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    return response.json() if response.status_code == 200 else None


def test_dataset_items_round_trip(langfuse: Langfuse, api: httpx.Client) -> None:
    name = f"sdk/{uuid.uuid4().hex[:8]}"  # a folder name: travels URL-encoded
    created = langfuse.create_dataset(name=name, description="d", metadata={"dm": 1})
    assert (created.name, created.description, created.metadata) == (name, "d", {"dm": 1})
    for n in range(5):
        langfuse.create_dataset_item(
            dataset_name=name,
            input={"q": n},
            expected_output=n * 2,
            metadata={"n": n},
        )
    explicit = langfuse.create_dataset_item(
        dataset_name=name, input={"q": 9}, id=f"fixed-{name.replace('/', '-')}"
    )
    assert explicit.dataset_name == name and explicit.media_references == []

    # Pages of two: the SDK walks `dataset-items` until `meta.totalPages`.
    dataset = langfuse.get_dataset(name, fetch_items_page_size=2)
    assert dataset.id == created.id and dataset.metadata == {"dm": 1}
    assert sorted(item.input["q"] for item in dataset.items) == [0, 1, 2, 3, 4, 9]
    assert {item.dataset_name for item in dataset.items} == {name}

    # Archived items drop out of the dataset the SDK runs experiments on.
    langfuse.create_dataset_item(dataset_name=name, id=explicit.id, status="ARCHIVED")
    assert len(langfuse.get_dataset(name).items) == 5

    body = api.get(f"/api/public/v2/datasets/{quote(name, safe='')}").json()
    assert body["id"] == created.id


def test_run_experiment_is_read_back_as_a_dataset_run(
    langfuse: Langfuse, api: httpx.Client
) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"sdk-exp-{tag}"
    langfuse.create_dataset(name=name)
    # Outputs stay non-zero: like upstream, a falsy output does not count as one.
    for n in range(1, 4):
        langfuse.create_dataset_item(
            dataset_name=name, input={"a": n, "b": n}, expected_output=2 * n
        )
    dataset = langfuse.get_dataset(name)

    def task(*, item: Any, **_: Any) -> int:
        # One wrong answer, so the scores differ.
        total = item.input["a"] + item.input["b"]
        return total + 1 if item.input["a"] == 3 else total

    def exact(*, output: Any, expected_output: Any, **_: Any) -> Evaluation:
        return Evaluation(name="exact", value=1.0 if output == expected_output else 0.0)

    def accuracy(*, item_results: list[Any], **_: Any) -> Evaluation:
        values = [e.value for r in item_results for e in r.evaluations if e.name == "exact"]
        return Evaluation(name="accuracy", value=sum(values) / len(values))

    run_name = f"run {tag}"
    result = dataset.run_experiment(
        name="sdk experiment",
        run_name=run_name,
        description="adds numbers",
        task=task,
        evaluators=[exact],
        run_evaluators=[accuracy],
        metadata={"model": "adder"},
    )
    langfuse.flush()
    assert len(result.item_results) == 3
    experiment_id = result.experiment_id

    path = f"/api/public/datasets/{quote(name, safe='')}/runs"
    runs = poll(lambda: json_of(api, path), lambda b: b is not None and len(b["data"]) == 1)
    (run,) = runs["data"]
    assert (run["id"], run["name"], run["datasetName"]) == (experiment_id, run_name, name)
    assert run["datasetId"] == dataset.id

    run_path = f"{path}/{quote(run_name, safe='')}"
    run = poll(
        lambda: json_of(api, run_path),
        lambda b: b is not None and len(b["datasetRunItems"]) == 3 and b["description"],
    )
    assert run["description"] == "adds numbers"
    assert run["metadata"] == {"model": "adder"}
    run_items = run["datasetRunItems"]
    assert {i["datasetItemId"] for i in run_items} == {item.id for item in dataset.items}
    assert {i["traceId"] for i in run_items} == {r.trace_id for r in result.item_results}

    # Each item's trace: item-run root, task, evaluation span and one evaluator span.
    for run_item in run_items:
        trace = poll(
            lambda run_item=run_item: json_of(api, f"/api/public/traces/{run_item['traceId']}"),
            lambda b: b is not None and len(b["observations"]) >= 4,
        )
        by_id = {o["id"]: o for o in trace["observations"]}
        task_span = by_id[run_item["observationId"]]
        assert task_span["name"] == "experiment-item-task"
        assert task_span["environment"] == "sdk-experiment"

    # Item-level scores arrive through the normal score path, keyed to the task span.
    items = poll(
        lambda: json_of(
            api,
            "/api/public/experiment-items",
            fromStartTime="2020-01-01T00:00:00Z",
            experimentId=experiment_id,
            fields="core,dataset,io,scores",
        ),
        lambda b: (
            b is not None
            and len(b["data"]) == 3
            and all(any(s["name"] == "exact" for s in i["scores"]) for i in b["data"])
        ),
    )
    for item in items["data"]:
        assert item["experimentName"] == run_name
        assert item["experimentDatasetId"] == dataset.id
        exact_score = next(s for s in item["scores"] if s["name"] == "exact")
        assert exact_score["value"] == (1.0 if item["output"] == item["expectedOutput"] else 0.0)
    assert sorted(s["value"] for i in items["data"] for s in i["scores"]) == [0.0, 1.0, 1.0]

    # The run-level score carries datasetRunId = the experiment id.
    experiments = poll(
        lambda: json_of(
            api,
            "/api/public/experiments",
            fromStartTime="2020-01-01T00:00:00Z",
            id=experiment_id,
            fields="core,metadata,scores",
        ),
        lambda b: b is not None and len(b["data"]) == 1 and b["data"][0]["scores"],
    )
    (experiment,) = experiments["data"]
    assert (experiment["name"], experiment["itemCount"]) == (run_name, 3)
    assert experiment["metadata"] == {"model": "adder"}
    (run_score,) = experiment["scores"]
    assert run_score["name"] == "accuracy"
    assert run_score["value"] == pytest.approx(2 / 3)
    assert run_score["subject"] == {"kind": "experiment", "id": experiment_id}


def test_local_data_experiment_is_an_experiment_without_dataset(
    langfuse: Langfuse, api: httpx.Client
) -> None:
    tag = uuid.uuid4().hex[:8]
    result = langfuse.run_experiment(
        name=f"local {tag}",
        data=[{"input": "hello", "expected_output": "HELLO"}],
        task=lambda *, item, **_: item["input"].upper(),
    )
    langfuse.flush()
    experiments = poll(
        lambda: json_of(
            api,
            "/api/public/experiments",
            fromStartTime="2020-01-01T00:00:00Z",
            id=result.experiment_id,
        ),
        lambda b: b is not None and len(b["data"]) == 1,
    )
    (experiment,) = experiments["data"]
    assert experiment["datasetId"] is None and experiment["itemCount"] == 1
    assert experiment["name"].startswith(f"local {tag} - ")
