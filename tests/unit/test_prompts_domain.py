"""Prompt rules without I/O: names, labels, variables, compile, references, deletion, cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from langfuse.api import Prompt_Chat, Prompt_Text
from langfuse.model import ChatPromptClient, TextPromptClient

from fathom.core.domain.access import Role
from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.prompts import (
    API_ACTOR,
    LATEST_LABEL,
    Dependent,
    PromptActor,
    PromptReference,
    PromptType,
    PromptVersion,
    compile_prompt,
    compile_template,
    extract_variables,
    graph_names,
    labels_after_add,
    labels_after_create,
    parse_references,
    placeholder_names,
    plan_deletion,
    plan_label_move,
    prompt_variables,
    resolve_prompt,
    tags_changed,
    validate_labels,
    validate_name,
)
from fathom.core.ports.prompts import PromptCacheKey
from fathom.core.usecases.prompts import (
    InMemoryPromptCache,
    PromptSelector,
    parse_create_request,
    parse_new_labels,
)
from tests.unit.fakes import FakeClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def version(
    name: str,
    number: int,
    prompt: Any = "text",
    labels: list[str] | None = None,
    kind: PromptType = PromptType.TEXT,
) -> PromptVersion:
    return PromptVersion(
        id=f"{name}@{number}",
        project_id="p",
        name=name,
        version=number,
        type=kind,
        prompt=prompt,
        config={},
        labels=list(labels or []),
        tags=[],
        commit_message=None,
        created_by="API",
        created_at=NOW,
        updated_at=NOW,
    )


# --- names and labels --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "folder/sub/prompt", "with space", "ünï©ødé/名前", "a%b?c#d&e+f=g", " trimmed "]
)
def test_valid_names_round_trip_trimmed(name: str) -> None:
    assert validate_name(name) == name.strip()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "Text cannot be empty"),
        ("/lead", "Name cannot start with a slash"),
        ("trail/", "Name cannot end with a slash"),
        ("trail/ ", "Name cannot end with a slash"),
        ("a//b", "Name cannot contain consecutive slashes"),
        ("a|b", "Prompt name cannot contain '|' character"),
        ("<b>x</b>", "Text cannot contain HTML tags"),
        ("   ", "Name cannot be empty"),
        ("new", "Prompt name cannot be 'new'"),
        ("x" * 256, "at most 255"),
        (7, "must be a string"),
    ],
)
def test_invalid_names(name: Any, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        validate_name(name)


def test_label_rules() -> None:
    assert validate_labels(["production", "a.b-c_1", "production"]) == ["production", "a.b-c_1"]
    assert validate_labels(None) == []
    for bad in ["Prod", "with space", "", "x" * 37, 3]:
        with pytest.raises(InvalidInput, match=r"labels\[0\]"):
            validate_labels([bad])


def test_latest_is_always_added_on_create_and_refused_on_patch() -> None:
    assert labels_after_create(["production", "latest"]) == ["production", "latest"]
    assert labels_after_create([]) == [LATEST_LABEL]
    with pytest.raises(InvalidInput, match="always assigned to the latest"):
        parse_new_labels({"newLabels": ["latest"]})
    assert parse_new_labels({"newLabels": ["a", "a"]}) == ["a"]
    with pytest.raises(InvalidInput, match="newLabels is required"):
        parse_new_labels({})


def test_patch_adds_labels_in_front_and_keeps_existing() -> None:
    assert labels_after_add(["latest", "staging"], ["production"]) == [
        "production",
        "latest",
        "staging",
    ]


def test_label_move_never_leaves_a_label_on_two_versions() -> None:
    v1 = version("p", 1, labels=["production", "staging"])
    v2 = version("p", 2, labels=["latest", "dev"])
    v3 = version("p", 3, labels=[])
    changes = plan_label_move([v1, v2, v3], v3.id, ["production", "dev"])
    assert changes == {v1.id: ["staging"], v2.id: ["latest"], v3.id: ["production", "dev"]}
    # A version being created is not in the list: only the others change.
    assert plan_label_move([v1, v2], "new", ["latest", "staging"]) == {
        v1.id: ["production"],
        v2.id: ["dev"],
    }
    assert plan_label_move([v1], v1.id, ["production", "staging"]) == {}


def test_tags_change_is_order_insensitive() -> None:
    assert not tags_changed(["a", "b"], ["b", "a"])
    assert tags_changed(None, ["a"])
    assert not tags_changed(None, [])


def test_actor_roles_for_protected_labels() -> None:
    assert API_ACTOR.may_change_protected_labels
    assert PromptActor.for_user("u", Role.ADMIN).may_change_protected_labels
    assert PromptActor.for_user("u", Role.OWNER).may_change_protected_labels
    assert not PromptActor.for_user("u", Role.MEMBER).may_change_protected_labels
    assert not PromptActor.for_user("u", Role.VIEWER).may_change_protected_labels
    assert PromptActor.for_user("u", Role.VIEWER, instance_admin=True).may_change_protected_labels


def test_selector_defaults_to_production_and_refuses_both() -> None:
    assert PromptSelector.of(None, None) == PromptSelector(None, "production")
    assert PromptSelector.of(3, None) == PromptSelector(3, None)
    with pytest.raises(InvalidInput, match="Cannot specify both version and label"):
        PromptSelector.of(3, "production")


# --- request parsing ---------------------------------------------------------------------------


def test_create_request_text_and_chat() -> None:
    text = parse_create_request({"name": "t", "prompt": "Hi {{name}}", "config": None})
    assert (text.type, text.config, text.labels, text.tags) == (PromptType.TEXT, {}, [], None)
    chat = parse_create_request(
        {
            "name": "c",
            "type": "chat",
            "prompt": [
                {"role": "system", "content": "sys", "type": "chatmessage", "extra": 1},
                {"type": "placeholder", "name": "history"},
            ],
            "tags": ["x", "x", "y"],
            "labels": ["staging"],
            "commitMessage": "first",
        }
    )
    assert chat.prompt == [
        {"role": "system", "content": "sys"},
        {"type": "placeholder", "name": "history"},
    ]
    assert (chat.tags, chat.labels, chat.commit_message) == (["x", "y"], ["staging"], "first")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "t", "prompt": ["x"]}, "must be a string for a text prompt"),
        ({"name": "t", "type": "chat", "prompt": "x"}, "must be an array"),
        ({"name": "t", "type": "other", "prompt": "x"}, "type must be"),
        ({"name": "t", "type": "chat", "prompt": [{"role": "u"}]}, r"prompt\[0\] must be"),
        (
            {"name": "t", "type": "chat", "prompt": [{"type": "placeholder", "name": "1x"}]},
            "Placeholder name must start with a letter",
        ),
        (
            {
                "name": "t",
                "type": "chat",
                "prompt": [
                    {"role": "user", "content": "{{history}}"},
                    {"type": "placeholder", "name": "history"},
                ],
            },
            "variables and placeholders must be unique, the following are not: history",
        ),
        ({"name": "t", "prompt": "x", "commitMessage": "m" * 501}, "at most 500"),
        ({"name": "t", "prompt": "x", "tags": "a"}, "tags must be an array"),
        ({"name": "t", "prompt": "x", "config": float("nan")}, "config must be JSON"),
        ([], "expected a JSON object"),
    ],
)
def test_create_request_errors(body: Any, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_create_request(body)


# --- variables and compile ---------------------------------------------------------------------


def test_variables_as_the_server_lists_them() -> None:
    assert extract_variables("{{a}} {{b_1}} {{a}} {{ spaced }} {{1x}} {{ñame}} {{{c}}}") == [
        "a",
        "b_1",
        "ñame",
        "c",
    ]
    chat = [
        {"role": "system", "content": "{{x}} and {{y}}"},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{y}}{{z}}"},
    ]
    assert prompt_variables(chat) == ["x", "y", "z"]
    assert placeholder_names(chat) == ["history"]


def test_compile_template_matches_the_sdk() -> None:
    template = "Hi {{ name }}, {{missing}} {{n}} {{none}} {{ unclosed"
    data = {"name": "Ada", "n": 3, "none": None}
    expected = TextPromptClient(
        Prompt_Text(name="t", version=1, prompt=template, config={}, labels=[], tags=[])
    ).compile(**data)
    assert compile_template(template, data) == expected == "Hi Ada, {{missing}} 3  {{ unclosed"
    assert compile_template(template, None) == template


def test_compile_chat_with_placeholders_matches_the_sdk() -> None:
    messages = [
        {"role": "system", "content": "You help {{user}}."},
        {"type": "placeholder", "name": "history"},
        {"type": "placeholder", "name": "unfilled"},
        {"type": "placeholder", "name": "scalar"},
        {"role": "user", "content": "{{question}}"},
    ]
    kwargs: dict[str, Any] = {
        "user": "Ada",
        "question": "Why?",
        "history": [
            {"role": "user", "content": "hi {{user}}"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]},
            {"content": "no role"},
        ],
        "scalar": "plain",
    }
    sdk = ChatPromptClient(
        Prompt_Chat(name="c", version=1, prompt=messages, config={}, labels=[], tags=[])
    ).compile(**kwargs)
    ours = compile_prompt(
        messages,
        variables={"user": "Ada", "question": "Why?"},
        placeholders={"history": kwargs["history"], "scalar": "plain"},
    )
    assert ours == [dict(message) for message in sdk]
    assert ours[1] == {"role": "user", "content": "hi Ada"}
    assert ours[2]["tool_calls"] == [{"id": "c1"}]
    assert ours[3] == {"content": "no role", "role": "NOT_GIVEN"}
    assert ours[4] == {"type": "placeholder", "name": "unfilled"}
    assert ours[5] == {"role": "NOT_GIVEN", "content": "plain"}


def test_compile_accepts_a_stored_version() -> None:
    assert compile_prompt(version("t", 1, "Hello {{x}}"), {"x": 1}) == "Hello 1"


# --- references --------------------------------------------------------------------------------


def test_parse_references_like_upstream() -> None:
    text = (
        "@@@langfusePrompt:name=a|label=production@@@ "
        "@@@langfusePrompt:name=folder/b|version=2@@@ "
        "@@@langfusePrompt:name=a|label=production@@@ "  # duplicate
        "@@@langfusePrompt:label=x|name=c@@@ "  # name not first
        "@@@langfusePrompt:name=d@@@ "  # one part
        "@@@langfusePrompt:name=e|version=two@@@ "  # not a number
        "@@@langfusePrompt:name=f|label=a|x=1@@@"  # three parts
    )
    assert parse_references(text) == [
        PromptReference("a", label="production"),
        PromptReference("folder/b", version=2),
    ]
    chat = [{"role": "system", "content": "@@@langfusePrompt:name=a|version=1@@@"}]
    assert parse_references(chat) == [PromptReference("a", version=1)]


def lookup_of(*versions: PromptVersion) -> Any:
    def lookup(reference: PromptReference) -> PromptVersion | None:
        for candidate in versions:
            if candidate.name != reference.name:
                continue
            if reference.version is not None and candidate.version == reference.version:
                return candidate
            if reference.label is not None and reference.label in candidate.labels:
                return candidate
        return None

    return lookup


def test_resolve_nested_references_with_graph() -> None:
    leaf = version("leaf", 1, 'leaf "$1" \\1 text', labels=["production"])
    middle = version("mid", 3, "mid[@@@langfusePrompt:name=leaf|label=production@@@]", ["x"])
    root = version(
        "root",
        1,
        "A @@@langfusePrompt:name=mid|version=3@@@ B @@@langfusePrompt:name=mid|label=x@@@",
    )
    content, graph = resolve_prompt(root, lookup_of(leaf, middle))
    assert content == 'A mid[leaf "$1" \\1 text] B mid[leaf "$1" \\1 text]'
    assert graph == {
        "root": {"name": "root", "version": 1, "id": root.id},
        "dependencies": {
            root.id: [{"id": middle.id, "name": "mid", "version": 3}],
            middle.id: [{"id": leaf.id, "name": "leaf", "version": 1}],
        },
    }
    assert graph_names(graph) == {"root", "mid", "leaf"}


def test_resolve_inside_chat_messages() -> None:
    leaf = version("leaf", 1, "be brief", labels=["production"])
    root = version(
        "chat",
        1,
        [
            {"role": "system", "content": "Rules: @@@langfusePrompt:name=leaf|label=production@@@"},
            {"type": "placeholder", "name": "history"},
        ],
        kind=PromptType.CHAT,
    )
    content, graph = resolve_prompt(root, lookup_of(leaf))
    assert content == [
        {"role": "system", "content": "Rules: be brief"},
        {"type": "placeholder", "name": "history"},
    ]
    assert graph is not None


def test_no_references_gives_no_graph() -> None:
    root = version("plain", 1, "nothing here")
    assert resolve_prompt(root, lookup_of()) == ("nothing here", None)


@pytest.mark.parametrize(
    ("others", "message"),
    [
        ([], "Prompt dependency not found: child - label production"),
        (
            [version("child", 1, [{"role": "s", "content": "c"}], ["production"], PromptType.CHAT)],
            "Prompt dependency is not a text prompt: child - label production",
        ),
        (
            [version("child", 1, "@@@langfusePrompt:name=root|version=1@@@", ["production"])],
            "Circular dependency detected involving prompt 'root' version 1",
        ),
    ],
)
def test_resolution_errors(others: list[PromptVersion], message: str) -> None:
    root = version("root", 2, "@@@langfusePrompt:name=child|label=production@@@")
    root_v1 = version("root", 1, "old")
    with pytest.raises(InvalidInput, match=message):
        resolve_prompt(root, lookup_of(root_v1, *others))


def test_cycle_between_two_other_prompts() -> None:
    a = version("a", 1, "@@@langfusePrompt:name=b|version=1@@@")
    b = version("b", 1, "@@@langfusePrompt:name=a|version=1@@@")
    root = version("root", 1, "@@@langfusePrompt:name=a|version=1@@@")
    with pytest.raises(InvalidInput, match="Circular dependency detected involving prompt 'a'"):
        resolve_prompt(root, lookup_of(a, b))


def test_nesting_deeper_than_five_is_refused() -> None:
    chain = [version(f"n{i}", 1, f"@@@langfusePrompt:name=n{i + 1}|version=1@@@") for i in range(6)]
    chain.append(version("n6", 1, "end"))
    # root n0 -> n1 -> n2 -> n3 -> n4 is fine (four levels below the root) ...
    shallow = version("n4", 1, "end")
    content, _ = resolve_prompt(chain[0], lookup_of(*chain[1:4], shallow))
    assert content == "end"
    # ... one more level is not.
    with pytest.raises(InvalidInput, match=r"Maximum nesting depth exceeded \(5\)"):
        resolve_prompt(chain[0], lookup_of(*chain[1:]))


# --- deletion ----------------------------------------------------------------------------------


def test_deleting_latest_moves_it_to_the_highest_remaining_version() -> None:
    v1 = version("p", 1, labels=["production"])
    v2 = version("p", 2, labels=[])
    v3 = version("p", 3, labels=["latest"])
    plan = plan_deletion([v1, v2, v3], [v3], [])
    assert plan.relabelled == {v2.id: ["latest"]}
    assert not plan.blocking and not plan.deletes_every_version
    everything = plan_deletion([v1, v2, v3], [v1, v2, v3], [])
    assert everything.deletes_every_version and everything.relabelled == {}


def test_deletion_blocked_by_references_that_would_break() -> None:
    v1 = version("p", 1, labels=["production"])
    v2 = version("p", 2, labels=["latest"])
    by_version = Dependent("x", "parent", 4, child_version=1, child_label=None)
    by_label = Dependent("y", "other", 1, child_version=None, child_label="production")
    by_latest = Dependent("z", "third", 2, child_version=None, child_label="latest")
    plan = plan_deletion([v1, v2], [v1], [by_version, by_label, by_latest])
    assert plan.blocking == [by_version, by_label]
    # `latest` moves to v1 when v2 goes, so a reference to it keeps working.
    assert plan_deletion([v1, v2], [v2], [by_latest]).blocking == []


# --- the in-process cache ----------------------------------------------------------------------


async def test_cache_hits_expires_and_is_invalidated_through_references() -> None:
    clock = FakeClock()
    cache = InMemoryPromptCache(clock, ttl_seconds=10)
    key = PromptCacheKey("p", "root", None, "production")
    other_project = PromptCacheKey("q", "root", None, "production")
    prompt = version("root", 1)
    token = await cache.token("p")
    await cache.put(key, prompt, {"root", "child"}, token)
    await cache.put(other_project, prompt, set(), await cache.token("q"))
    assert await cache.get(key) is prompt
    # A change to a referenced prompt drops the entry built from it, in that project only.
    await cache.invalidate("p", "child")
    assert await cache.get(key) is None
    assert await cache.get(other_project) is prompt
    # A read that began before a change must not store what it read.
    stale_token = await cache.token("p")
    await cache.invalidate("p", "unrelated")
    await cache.put(key, prompt, {"root"}, stale_token)
    assert await cache.get(key) is None
    await cache.put(key, prompt, {"root"}, await cache.token("p"))
    clock.advance(11)
    assert await cache.get(key) is None
    assert len(cache) == 1


async def test_cache_is_bounded() -> None:
    cache = InMemoryPromptCache(FakeClock(), max_entries=2)
    token = await cache.token("p")
    keys = [PromptCacheKey("p", f"n{i}", 1, None) for i in range(3)]
    for key in keys:
        await cache.put(key, version(key.name, 1), set(), token)
    assert len(cache) == 2
    assert await cache.get(keys[0]) is None
    assert await cache.get(keys[2]) is not None
