"""The official `langfuse` SDK 5.x manages prompts on a live server.

The SDK caches prompts client-side for 60 s, so reads after a change pass
`cache_ttl_seconds=0`. Names carry a random suffix: the server is shared by the session.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from langfuse import Langfuse
from langfuse.api import NotFoundError
from langfuse.model import ChatPromptClient, TextPromptClient

from tests.sdk.conftest import poll


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


def test_text_prompt_create_fetch_and_compile(langfuse: Langfuse, suffix: str) -> None:
    name = f"sdk-text-{suffix}"
    created = langfuse.create_prompt(
        name=name,
        prompt="Hi {{name}}, you are {{age}}.",
        labels=["production"],
        tags=["sdk"],
        config={"model": "gpt-4o", "temperature": 0.1},
        commit_message="first",
    )
    assert isinstance(created, TextPromptClient)
    assert (created.version, created.labels, created.tags) == (1, ["production", "latest"], ["sdk"])
    assert created.commit_message == "first"

    fetched = langfuse.get_prompt(name, cache_ttl_seconds=0)
    assert isinstance(fetched, TextPromptClient) and not fetched.is_fallback
    assert fetched.prompt == "Hi {{name}}, you are {{age}}."
    assert fetched.config == {"model": "gpt-4o", "temperature": 0.1}
    assert fetched.variables == ["name", "age"]
    assert fetched.compile(name="Ada", age=36) == "Hi Ada, you are 36."


def test_fetch_by_version_and_label(langfuse: Langfuse, suffix: str) -> None:
    name = f"sdk-versions-{suffix}"
    langfuse.create_prompt(name=name, prompt="one", labels=["production"])
    langfuse.create_prompt(name=name, prompt="two", labels=["staging"])
    langfuse.create_prompt(name=name, prompt="three")
    assert langfuse.get_prompt(name, cache_ttl_seconds=0).prompt == "one"
    assert langfuse.get_prompt(name, version=2, cache_ttl_seconds=0).prompt == "two"
    assert langfuse.get_prompt(name, label="staging", cache_ttl_seconds=0).prompt == "two"
    latest = langfuse.get_prompt(name, label="latest", cache_ttl_seconds=0)
    assert (latest.prompt, latest.version, latest.labels) == ("three", 3, ["latest"])


def test_missing_prompt_falls_back_or_raises(langfuse: Langfuse, suffix: str) -> None:
    name = f"sdk-missing-{suffix}"
    fallback = langfuse.get_prompt(
        name, fallback="Fallback {{x}}", max_retries=0, cache_ttl_seconds=0
    )
    assert fallback.is_fallback and fallback.compile(x=1) == "Fallback 1"
    chat_fallback = langfuse.get_prompt(
        name,
        type="chat",
        fallback=[{"role": "system", "content": "fb"}],
        max_retries=0,
        cache_ttl_seconds=0,
    )
    assert chat_fallback.is_fallback and chat_fallback.compile() == [
        {"role": "system", "content": "fb"}
    ]
    with pytest.raises(NotFoundError):
        langfuse.get_prompt(name, max_retries=0, cache_ttl_seconds=0)


def test_update_prompt_moves_labels(langfuse: Langfuse, suffix: str) -> None:
    name = f"sdk-labels-{suffix}"
    langfuse.create_prompt(name=name, prompt="v1", labels=["production", "staging"])
    langfuse.create_prompt(name=name, prompt="v2")
    updated = langfuse.update_prompt(name=name, version=2, new_labels=["production"])
    assert updated.version == 2 and updated.labels == ["production", "latest"]
    served = langfuse.get_prompt(name, cache_ttl_seconds=0)
    assert (served.version, served.prompt) == (2, "v2")
    old = langfuse.get_prompt(name, version=1, cache_ttl_seconds=0)
    assert old.labels == ["staging"]
    # Rollback.
    langfuse.update_prompt(name=name, version=1, new_labels=["production"])
    assert langfuse.get_prompt(name, cache_ttl_seconds=0).version == 1


def test_chat_prompt_with_placeholders_compiles(langfuse: Langfuse, suffix: str) -> None:
    name = f"sdk-chat-{suffix}"
    created = langfuse.create_prompt(
        name=name,
        type="chat",
        prompt=[
            {"role": "system", "content": "You help {{user}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ],
        labels=["production"],
    )
    assert isinstance(created, ChatPromptClient)
    fetched = langfuse.get_prompt(name, type="chat", cache_ttl_seconds=0)
    assert isinstance(fetched, ChatPromptClient)
    assert fetched.variables == ["user", "question"]
    compiled = fetched.compile(
        user="Ada",
        question="And now?",
        history=[
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi {{user}}"},
        ],
    )
    assert compiled == [
        {"role": "system", "content": "You help Ada."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi Ada"},
        {"role": "user", "content": "And now?"},
    ]


def test_composed_prompts_are_resolved(langfuse: Langfuse, suffix: str) -> None:
    child = f"sdk/snippets/tone-{suffix}"
    parent = f"sdk-composed-{suffix}"
    langfuse.create_prompt(name=child, prompt="Be brief.", labels=["production"])
    langfuse.create_prompt(
        name=parent,
        prompt=f"@@@langfusePrompt:name={child}|label=production@@@ Answer {{{{q}}}}.",
        labels=["production"],
    )
    fetched = langfuse.get_prompt(parent, cache_ttl_seconds=0)
    assert fetched.prompt == "Be brief. Answer {{q}}."
    assert fetched.compile(q="why") == "Be brief. Answer why."
    raw = langfuse.api.prompts.get(quote(parent, safe=""), resolve=False)
    assert raw.prompt.startswith("@@@langfusePrompt:") and raw.resolution_graph is None
    # A new child version behind the label shows up in the parent at once.
    langfuse.create_prompt(name=child, prompt="Be thorough.", labels=["production"])
    assert langfuse.get_prompt(parent, cache_ttl_seconds=0).prompt.startswith("Be thorough.")


def test_folder_names_list_and_delete(langfuse: Langfuse, suffix: str) -> None:
    name = f"sdk/folder {suffix}/with?special#chars"
    langfuse.create_prompt(name=name, prompt="x", labels=["production"], tags=[suffix])
    assert langfuse.get_prompt(name, cache_ttl_seconds=0).name == name
    listing = langfuse.api.prompts.list(tag=suffix)
    assert [meta.name for meta in listing.data] == [name]
    assert listing.data[0].versions == [1] and listing.meta.total_items == 1
    langfuse.api.prompts.delete(quote(name, safe=""))
    with pytest.raises(NotFoundError):
        langfuse.get_prompt(name, max_retries=0, cache_ttl_seconds=0)
    assert langfuse.api.prompts.list(tag=suffix).data == []


def test_generation_linked_to_a_fetched_prompt(
    langfuse: Langfuse, api: httpx.Client, suffix: str
) -> None:
    """`prompt=` on a generation links it: the server resolves the prompt's id."""
    name = f"sdk-linked-{suffix}"
    langfuse.create_prompt(name=name, prompt="Summarise {{text}}", labels=["production"])
    prompt = langfuse.get_prompt(name, cache_ttl_seconds=0)
    with langfuse.start_as_current_observation(
        name="summarise", as_type="generation", model="gpt-4o", prompt=prompt
    ) as generation:
        generation.update(output="short")
        trace_id = generation.trace_id
    langfuse.flush()
    stored = api.get(f"/api/public/v2/prompts/{quote(name, safe='')}").json()
    observations = poll(
        lambda: api.get("/api/public/observations", params={"traceId": trace_id}).json()["data"],
        lambda data: len(data) == 1,
    )
    assert (observations[0]["promptName"], observations[0]["promptVersion"]) == (name, 1)
    assert observations[0]["promptId"] == stored["id"]
