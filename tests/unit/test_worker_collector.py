"""The worker pauses garbage collection while a job batch is in flight, and only then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fathom.entrypoints.worker import collector_paused


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_collection_is_paused_inside_a_batch_and_back_after_it() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_batches_share_one_pause() -> None:
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second batch is still in flight
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_failing_batch_still_resumes_collection() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("job handler failed")
    assert gc.isenabled()
