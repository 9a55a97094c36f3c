"""Prompt management: versions, labels, variables, placeholders and composition.

A prompt is a name with numbered, immutable versions. Labels point at one version each
(`production` is served when nothing else is asked for, `latest` always sits on the newest
version and is managed here, never by callers). Text prompts may embed other text prompts
with `@@@langfusePrompt:name=NAME|label=LABEL@@@` (or `|version=N`); the server resolves
them on fetch. Variables (`{{name}}`) and placeholders (chat entries
`{"type": "placeholder", "name": ...}`) are filled in by `compile_prompt`, which behaves
like the Langfuse SDK's `compile()` so code embedding Fathom gets the same result without
HTTP. Validation messages follow Langfuse's where it has one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from fathom.core.domain.access import Role
from fathom.core.domain.errors import InvalidInput

PRODUCTION_LABEL: Final = "production"
LATEST_LABEL: Final = "latest"
LABEL_MAX_LENGTH: Final = 36
NAME_MAX_LENGTH: Final = 255
COMMIT_MESSAGE_MAX_LENGTH: Final = 500
MAX_NESTING_DEPTH: Final = 5
RESERVED_NAME: Final = "new"  # the UI's "new prompt" page

_LABEL = re.compile(r"^[a-z0-9_\-.]+$")
_HTML_TAG = re.compile(r"<[^>]*>")
_PLACEHOLDER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
_MUSTACHE = re.compile(r"{{([^{}]*)}}")
_REFERENCE_TAG = re.compile(r"@@@langfusePrompt:(.*?)@@@")

LABEL_FORMAT_ERROR: Final = (
    "Label must be lowercase alphanumeric with optional underscores, hyphens, or periods"
)
PLACEHOLDER_NAME_ERROR: Final = (
    "Placeholder name must start with a letter and contain only alphanumeric characters and "
    "underscores"
)
LATEST_IS_MANAGED: Final = "Label 'latest' is always assigned to the latest prompt version"

PromptContent = str | list[dict[str, Any]]


class PromptType(enum.StrEnum):
    TEXT = "text"
    CHAT = "chat"


@dataclass(slots=True)
class PromptVersion:
    """One stored version. `prompt` is the text, or the chat messages and placeholders.

    `resolution_graph` is only set on a fetched copy whose references were resolved
    (`{"root": {...}, "dependencies": {parent_id: [{id, name, version}]}}`)."""

    id: str
    project_id: str
    name: str
    version: int
    type: PromptType
    prompt: PromptContent
    config: Any
    labels: list[str]
    tags: list[str]
    commit_message: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    resolution_graph: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PromptMeta:
    """One prompt name in the list endpoint, aggregated over the versions a filter kept."""

    name: str
    type: PromptType
    versions: list[int]
    labels: list[str]
    tags: list[str]
    last_updated_at: datetime
    last_config: Any


@dataclass(frozen=True, slots=True)
class PromptListQuery:
    name: str | None = None
    version: int | None = None
    label: str | None = None
    tag: str | None = None
    from_updated_at: datetime | None = None
    to_updated_at: datetime | None = None
    page: int = 1
    limit: int = 10


@dataclass(frozen=True, slots=True)
class PromptReference:
    """A `@@@langfusePrompt:…@@@` tag: a name with exactly one of version or label."""

    name: str
    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        # Langfuse's wording in its resolution errors.
        if self.version is not None:
            return f"{self.name} - version {self.version}"
        return f"{self.name} - label {self.label}"


@dataclass(frozen=True, slots=True)
class Dependent:
    """A stored prompt version that references another prompt by name."""

    parent_id: str
    parent_name: str
    parent_version: int
    child_version: int | None
    child_label: str | None


@dataclass(frozen=True, slots=True)
class PromptActor:
    """Who changes prompts, as far as prompt rules care.

    Protected labels may only be set, moved or removed by actors allowed to: project
    admins and owners, instance admins, and project API keys. Langfuse lets ordinary
    project keys promote protected labels (CI pipelines do exactly that); only people with a
    lesser role are refused."""

    created_by: str
    may_change_protected_labels: bool

    @classmethod
    def for_user(cls, user_id: str, role: Role, *, instance_admin: bool = False) -> PromptActor:
        allowed = instance_admin or role in (Role.OWNER, Role.ADMIN)
        return cls(created_by=user_id, may_change_protected_labels=allowed)


API_ACTOR: Final = PromptActor(created_by="API", may_change_protected_labels=True)


# --- names and labels --------------------------------------------------------------------------


def validate_name(name: Any) -> str:
    """Langfuse's `PromptNameSchema`; returns the name trimmed as it is stored.

    Slashes make folders, so empty segments are refused; `|` is refused because it
    separates the parts of a reference tag. Anything else (spaces, unicode, `%`, `?`, `#`)
    is allowed and must round-trip through URL-encoded paths."""
    if not isinstance(name, str):
        raise InvalidInput("Invalid request data: name is required and must be a string")
    problem = _name_problem(name)
    if problem is not None:
        raise InvalidInput(f"Invalid request data: name: {problem}")
    return name.strip()


def _name_problem(name: str) -> str | None:
    if not name:
        return "Text cannot be empty"
    if _HTML_TAG.search(name):
        return "Text cannot contain HTML tags"
    if "|" in name:
        return "Prompt name cannot contain '|' character"
    # Checked on the trimmed name too (upstream checks before trimming, so " a/" got in).
    trimmed = name.strip()
    if name.startswith("/") or trimmed.startswith("/"):
        return "Name cannot start with a slash"
    if "//" in name:
        return "Name cannot contain consecutive slashes"
    if name.endswith("/") or trimmed.endswith("/"):
        return "Name cannot end with a slash"
    if not trimmed:
        return "Name cannot be empty"
    if trimmed == RESERVED_NAME:
        return f"Prompt name cannot be '{RESERVED_NAME}'"
    if len(trimmed) > NAME_MAX_LENGTH:
        return f"Prompt name must be at most {NAME_MAX_LENGTH} characters"
    return None


def label_problem(label: Any) -> str | None:
    if not isinstance(label, str):
        return "Label must be a string"
    if not label:
        return "Label cannot be empty"
    if len(label) > LABEL_MAX_LENGTH:
        return f"Label must be at most {LABEL_MAX_LENGTH} characters"
    if not _LABEL.match(label):
        return LABEL_FORMAT_ERROR
    return None


def validate_labels(labels: Any, field_name: str = "labels") -> list[str]:
    """A list of valid label names, duplicates dropped, order kept."""
    if labels is None:
        return []
    if not isinstance(labels, list):
        raise InvalidInput(f"Invalid request data: {field_name} must be an array of strings")
    for index, label in enumerate(labels):
        problem = label_problem(label)
        if problem is not None:
            raise InvalidInput(f"Invalid request data: {field_name}[{index}]: {problem}")
    return unique(labels)


def unique(values: Iterable[str]) -> list[str]:
    """Duplicates dropped, first occurrence kept (JavaScript's `[...new Set(values)]`)."""
    return list(dict.fromkeys(values))


def labels_after_create(requested: Sequence[str]) -> list[str]:
    """A new version always carries `latest` after whatever the caller asked for."""
    return unique([*requested, LATEST_LABEL])


def labels_after_add(current: Sequence[str], added: Sequence[str]) -> list[str]:
    """PATCH adds labels: the version keeps its own, new ones come first (as upstream)."""
    return unique([*added, *current])


def plan_label_move(
    versions: Iterable[PromptVersion], target_id: str, target_labels: Sequence[str]
) -> dict[str, list[str]]:
    """New label lists, by prompt id, for every one of `versions` whose labels change when
    `target_id` ends up with `target_labels`: each of those labels leaves every other
    version, so a label is never on two versions of a name. The target is included only
    when it is among `versions` (a version being created is written by its caller)."""
    moving = set(target_labels)
    changed: dict[str, list[str]] = {}
    for version in versions:
        if version.id == target_id:
            if list(version.labels) != list(target_labels):
                changed[version.id] = list(target_labels)
            continue
        kept = [label for label in version.labels if label not in moving]
        if kept != list(version.labels):
            changed[version.id] = kept
    return changed


def tags_changed(old: Sequence[str] | None, new: Sequence[str]) -> bool:
    return sorted(set(old or ())) != sorted(set(new))


# --- variables and placeholders ----------------------------------------------------------------


def _is_variable_name(name: str) -> bool:
    # Langfuse: /^\p{L}[\p{L}\p{N}_]*$/u
    return bool(name) and name[0].isalpha() and all(c.isalnum() or c == "_" for c in name)


def extract_variables(text: str) -> list[str]:
    """`{{name}}` variables of one template, as the server lists them: valid names only
    (a letter, then letters, digits or `_`), each once, in order of appearance."""
    return unique(m for m in _MUSTACHE.findall(text) if _is_variable_name(m))


def prompt_variables(prompt: PromptContent) -> list[str]:
    if isinstance(prompt, str):
        return extract_variables(prompt)
    found: list[str] = []
    for message in prompt:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            found.extend(extract_variables(content))
    return unique(found)


def placeholder_names(prompt: PromptContent) -> list[str]:
    if isinstance(prompt, str):
        return []
    return unique(
        message["name"]
        for message in prompt
        if isinstance(message, Mapping)
        and message.get("type") == "placeholder"
        and isinstance(message.get("name"), str)
    )


def validate_chat_messages(messages: Any) -> list[dict[str, Any]]:
    """Langfuse's `PromptChatMessageSchema` list: `{role, content}` strings (other keys are
    dropped, as zod does) or `{type: "placeholder", name}`."""
    if not isinstance(messages, list):
        raise InvalidInput("Invalid request data: prompt of a chat prompt must be an array")
    cleaned: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"prompt[{index}]"
        if not isinstance(message, Mapping):
            raise InvalidInput(f"Invalid request data: {where} must be an object")
        role, content = message.get("role"), message.get("content")
        if isinstance(role, str) and isinstance(content, str):
            cleaned.append({"role": role, "content": content})
            continue
        if message.get("type") == "placeholder":
            name = message.get("name")
            if not isinstance(name, str):
                raise InvalidInput(f"Invalid request data: {where}.name must be a string")
            if not _PLACEHOLDER_NAME.match(name):
                raise InvalidInput(f"Invalid request data: {where}.name: {PLACEHOLDER_NAME_ERROR}")
            cleaned.append({"type": "placeholder", "name": name})
            continue
        raise InvalidInput(
            f"Invalid request data: {where} must be a message with string 'role' and "
            "'content', or a placeholder {'type': 'placeholder', 'name': ...}"
        )
    conflicts = [v for v in prompt_variables(cleaned) if v in set(placeholder_names(cleaned))]
    if conflicts:
        raise InvalidInput(
            "Cannot create prompt, variables and placeholders must be unique, the following "
            f"are not: {', '.join(conflicts)}"
        )
    return cleaned


# --- compilation (the SDK's `compile()`) -------------------------------------------------------


def compile_template(content: str, data: Mapping[str, Any] | None) -> str:
    """Replace `{{ name }}` with `str(data[name])` (None gives ""); unknown names stay.

    Mirrors the Python SDK's `TemplateParser`: a variable ends at the first `}}` after its
    `{{`, its name is stripped, and there is no escaping."""
    if data is None:
        return content
    parts: list[str] = []
    position = 0
    while position < len(content):
        start = content.find("{{", position)
        if start == -1:
            parts.append(content[position:])
            break
        end = content.find("}}", start)
        if end == -1:
            parts.append(content[position:])
            break
        end += 2
        parts.append(content[position:start])
        name = content[start + 2 : end - 2].strip()
        if name in data:
            value = data[name]
            parts.append("" if value is None else str(value))
        else:
            parts.append(content[start:end])
        position = end
    return "".join(parts)


def compile_prompt(
    prompt: PromptVersion | PromptContent,
    variables: Mapping[str, Any] | None = None,
    placeholders: Mapping[str, Any] | None = None,
) -> PromptContent:
    """Fill a prompt in, exactly as `prompt_client.compile(**variables, **placeholders)`.

    Text: variables are substituted. Chat: each message becomes `{role, content}` with its
    variables substituted; a placeholder with a value is replaced by that list of messages
    (each keeps its extra keys, e.g. tool calls, and has its content compiled too); a
    placeholder without a value stays as it is."""
    content = prompt.prompt if isinstance(prompt, PromptVersion) else prompt
    data: dict[str, Any] = {**(variables or {}), **(placeholders or {})}
    if isinstance(content, str):
        return compile_template(content, data)
    compiled: list[dict[str, Any]] = []
    for message in content:
        if not isinstance(message, Mapping):
            continue
        if message.get("type") == "placeholder" and "name" in message:
            name = message["name"]
            if name not in data:
                compiled.append({"type": "placeholder", "name": name})
                continue
            value = data[name]
            if not isinstance(value, list):
                compiled.append({"role": "NOT_GIVEN", "content": str(value)})
                continue
            for item in value:
                if isinstance(item, Mapping):
                    expanded = dict(item)
                    expanded["role"] = item.get("role", "NOT_GIVEN")
                    expanded["content"] = _compile_content(item.get("content", ""), data)
                    compiled.append(expanded)
                else:
                    # The SDK appends the whole value as text in this case, and so do we.
                    compiled.append({"role": "NOT_GIVEN", "content": str(value)})
        elif "role" in message and "content" in message:
            compiled.append(
                {
                    "role": message["role"],
                    "content": _compile_content(message["content"], data),
                }
            )
    return compiled


def _compile_content(content: Any, data: Mapping[str, Any]) -> Any:
    # Multi-part content (lists of parts) is passed through untouched; the SDK would fail.
    return compile_template(content, data) if isinstance(content, str) else content


# --- composition -------------------------------------------------------------------------------


def _strings(prompt: PromptContent) -> Iterable[str]:
    if isinstance(prompt, str):
        yield prompt
        return
    for message in prompt:
        if isinstance(message, Mapping):
            yield from (value for value in message.values() if isinstance(value, str))


def parse_references(prompt: PromptContent) -> list[PromptReference]:
    """The distinct, well-formed reference tags of a prompt, in order of appearance.

    As upstream: `name=` must come first, there must be exactly two `|`-separated parts,
    a `version=` that is not an integer makes the tag plain text, and anything else that
    is not `version=` is read as the label."""
    found: list[PromptReference] = []
    for text in _strings(prompt):
        for inner in _REFERENCE_TAG.findall(text):
            parts = inner.split("|")
            if len(parts) != 2 or not parts[0].startswith("name="):
                continue
            params: dict[str, str] = {}
            for part in parts:
                key, _, rest = part.partition("=")
                value = rest.split("=", 1)[0]
                if key and value:
                    params[key] = value
            name = params.get("name")
            if not name:
                continue
            if "version" in params:
                try:
                    reference = PromptReference(name, version=int(params["version"]))
                except ValueError:
                    continue
            elif "label" in params:
                reference = PromptReference(name, label=params["label"])
            else:
                continue
            if reference not in found:
                found.append(reference)
    return found


def _tag_pattern(dependency: PromptVersion) -> re.Pattern[str]:
    name = re.escape(dependency.name)
    alternatives = [rf"@@@langfusePrompt:name={name}\|version={dependency.version}@@@"]
    alternatives += [
        rf"@@@langfusePrompt:name={name}\|label={re.escape(label)}@@@"
        for label in dependency.labels
    ]
    return re.compile("|".join(alternatives))


def _replace(prompt: PromptContent, pattern: re.Pattern[str], text: str) -> PromptContent:
    # A function replacement: the resolved text is inserted literally (no `\1` handling).
    def sub(value: str) -> str:
        return pattern.sub(lambda _match: text, value)

    if isinstance(prompt, str):
        return sub(prompt)
    return [
        {k: sub(v) if isinstance(v, str) else v for k, v in message.items()}
        if isinstance(message, Mapping)
        else message
        for message in prompt
    ]


Lookup = Callable[[PromptReference], PromptVersion | None]


def resolve_prompt(
    root: PromptVersion, lookup: Lookup
) -> tuple[PromptContent, dict[str, Any] | None]:
    """The prompt with every reference replaced by the referenced text prompt (itself
    resolved), and the resolution graph, or None when nothing was referenced.

    Each tag is replaced wherever it names the dependency by its version or by any of its
    labels. Unlike upstream, the graph lists each parent-child edge once. Raises
    `InvalidInput` on a missing or non-text dependency, a cycle (including any other version
    of the root's own name) or nesting deeper than five levels."""
    graph: dict[str, Any] = {
        "root": {"name": root.name, "version": root.version, "id": root.id},
        "dependencies": {},
    }
    dependencies: dict[str, list[dict[str, Any]]] = graph["dependencies"]
    seen: set[str] = set()
    # Text of dependencies already resolved: one referenced twice is resolved once.
    done: dict[str, str] = {}

    def resolve(current: PromptVersion, level: int) -> PromptContent:
        if level >= MAX_NESTING_DEPTH:
            raise InvalidInput(f"Maximum nesting depth exceeded ({MAX_NESTING_DEPTH})")
        if current.id in seen or (current.name == root.name and current.id != root.id):
            raise InvalidInput(
                f"Circular dependency detected involving prompt '{current.name}' "
                f"version {current.version}"
            )
        references = parse_references(current.prompt)
        if not references:
            return current.prompt
        seen.add(current.id)
        resolved = current.prompt
        for reference in references:
            dependency = lookup(reference)
            if dependency is None:
                raise InvalidInput(f"Prompt dependency not found: {reference.describe()}")
            if dependency.type is not PromptType.TEXT:
                raise InvalidInput(
                    f"Prompt dependency is not a text prompt: {reference.describe()}"
                )
            edge = {"id": dependency.id, "name": dependency.name, "version": dependency.version}
            edges = dependencies.setdefault(current.id, [])
            if edge not in edges:
                edges.append(edge)
            text = done.get(dependency.id)
            if text is None:
                resolved_text = resolve(dependency, level + 1)
                assert isinstance(resolved_text, str)
                text = done[dependency.id] = resolved_text
            resolved = _replace(resolved, _tag_pattern(dependency), text)
        seen.discard(current.id)
        return resolved

    content = resolve(root, 0)
    return content, (graph if dependencies else None)


def graph_names(graph: Mapping[str, Any] | None) -> set[str]:
    """Every prompt name a resolved prompt was built from (for cache invalidation)."""
    if not graph:
        return set()
    names = {graph["root"]["name"]}
    for children in graph["dependencies"].values():
        names.update(child["name"] for child in children)
    return names


# --- deletion ----------------------------------------------------------------------------------


@dataclass(slots=True)
class DeletionPlan:
    deleted: list[PromptVersion]
    # Label lists to write on remaining versions (only `latest` ever moves here).
    relabelled: dict[str, list[str]] = field(default_factory=dict)
    blocking: list[Dependent] = field(default_factory=list)
    deletes_every_version: bool = False


def plan_deletion(
    versions: Sequence[PromptVersion],
    deleted: Collection[PromptVersion],
    dependents: Sequence[Dependent],
) -> DeletionPlan:
    """What deleting `deleted` out of `versions` does: `latest` moves to the highest
    remaining version, and references from other prompts that would break block it (a
    reference by version to a deleted version, or by a label no remaining version has)."""
    deleted_ids = {v.id for v in deleted}
    deleted_numbers = {v.version for v in deleted}
    remaining = [v for v in versions if v.id not in deleted_ids]
    plan = DeletionPlan(deleted=list(deleted), deletes_every_version=not remaining)
    remaining_labels = {label for v in remaining for label in v.labels}
    if remaining and any(LATEST_LABEL in v.labels for v in deleted):
        if LATEST_LABEL not in remaining_labels:
            newest = max(remaining, key=lambda v: v.version)
            plan.relabelled[newest.id] = unique([*newest.labels, LATEST_LABEL])
            remaining_labels.add(LATEST_LABEL)
    for dependent in dependents:
        if dependent.child_version is not None:
            if dependent.child_version in deleted_numbers:
                plan.blocking.append(dependent)
        elif dependent.child_label is not None and dependent.child_label not in remaining_labels:
            plan.blocking.append(dependent)
    return plan


def blocking_message(name: str, blocking: Sequence[Dependent]) -> str:
    lines = "\n".join(
        f"{d.parent_name} v{d.parent_version} depends on {name} "
        f"{f'v{d.child_version}' if d.child_version is not None else d.child_label}"
        for d in blocking
    )
    return (
        "Other prompts are depending on prompt versions you are trying to delete:\n\n"
        f"{lines}\n\nPlease delete the dependent prompts first."
    )
