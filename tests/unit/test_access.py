"""AuthenticateApiKey and provisioning, against in-memory fakes."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import pytest

from fathom.adapters.auth.hashing import Sha256SecretHasher
from fathom.core.domain.access import AccessLevel, ApiKeyScope
from fathom.core.domain.errors import Forbidden, InvalidInput, Unauthorized
from fathom.core.usecases.access import (
    INVALID_CREDENTIALS,
    ORGANIZATION_KEY_ON_PROJECT_ROUTE,
    AuthenticateApiKey,
    CreateApiKey,
    CreateOrganization,
    CreateProject,
    HeadlessInitRequest,
    InitializeHeadless,
    require_project,
)
from tests.unit.fakes import FakeApiKeys, FakeClock, InMemoryRecordStore, SequentialIds


def basic(pk: str, sk: str) -> str:
    return "Basic " + base64.b64encode(f"{pk}:{sk}".encode()).decode()


@pytest.fixture
def world() -> dict:
    records = InMemoryRecordStore()
    clock = FakeClock()
    ids = SequentialIds()
    hasher = Sha256SecretHasher("salt")
    return {
        "records": records,
        "clock": clock,
        "hasher": hasher,
        "auth": AuthenticateApiKey(records, hasher, clock, ttl_seconds=60),
        "create_org": CreateOrganization(records, clock, ids),
        "create_project": CreateProject(records, clock, ids),
        "create_key": CreateApiKey(records, hasher, clock, ids),
        "init": InitializeHeadless(records, hasher, clock, ids),
    }


async def make_project_key(world: dict) -> tuple[str, str, str]:
    org = await world["create_org"]("Org")
    project = await world["create_project"](org.id, "Project")
    issued = await world["create_key"](org.id, project.id)
    return project.id, issued.api_key.public_key, issued.secret_key


async def test_issued_keys_look_like_langfuse_keys_and_only_the_hash_is_stored(world: dict) -> None:
    _, pk, sk = await make_project_key(world)
    assert pk.startswith("pk-lf-") and sk.startswith("sk-lf-")
    stored = next(iter(world["records"].db["api_keys"].values()))
    assert sk not in dataclasses.astuple(stored)
    assert stored.fast_hashed_secret_key == world["hasher"].fast_hash(sk)
    assert stored.display_secret_key == f"{sk[:6]}...{sk[-4:]}"


async def test_basic_auth_gives_project_access(world: dict) -> None:
    project_id, pk, sk = await make_project_key(world)
    principal = await world["auth"](basic(pk, sk))
    assert principal.access_level is AccessLevel.PROJECT
    assert require_project(principal) == project_id


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "No authorization header"),
        ("", "No authorization header"),
        ("Token abc", "Invalid authorization header"),
        ("Basic !!!notbase64", "not valid base64"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "Invalid authorization header"),
    ],
)
async def test_malformed_headers_are_401_with_a_reason(
    world: dict, header: str | None, message: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        await world["auth"](header)
    assert message in caught.value.message


async def test_wrong_secret_or_mismatched_public_key_is_401(world: dict) -> None:
    _, pk, sk = await make_project_key(world)
    for header in (basic(pk, sk + "x"), basic("pk-lf-other", sk)):
        with pytest.raises(Unauthorized) as caught:
            await world["auth"](header)
        assert caught.value.message == INVALID_CREDENTIALS


async def test_verified_keys_and_misses_are_cached_until_ttl(world: dict) -> None:
    _, pk, sk = await make_project_key(world)
    FakeApiKeys.lookups = 0
    for _ in range(5):
        await world["auth"](basic(pk, sk))
        with pytest.raises(Unauthorized):
            await world["auth"](basic(pk, "sk-lf-wrong"))
    assert FakeApiKeys.lookups == 2
    world["clock"].advance(61)
    await world["auth"](basic(pk, sk))
    assert FakeApiKeys.lookups == 3


@pytest.fixture
def slow_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key lookups take a database round trip, so other requests arrive meanwhile."""
    plain_lookup = FakeApiKeys.get_by_fast_hash

    async def slow_lookup(self: FakeApiKeys, fast_hash: str) -> object:
        await asyncio.sleep(0.01)
        return await plain_lookup(self, fast_hash)

    monkeypatch.setattr(FakeApiKeys, "get_by_fast_hash", slow_lookup)


@pytest.mark.usefixtures("slow_lookups")
async def test_concurrent_requests_with_an_uncached_key_share_one_lookup(world: dict) -> None:
    _, pk, sk = await make_project_key(world)
    FakeApiKeys.lookups = 0
    principals = await asyncio.gather(*(world["auth"](basic(pk, sk)) for _ in range(16)))
    assert FakeApiKeys.lookups == 1
    assert {p.public_key for p in principals} == {pk}
    with pytest.raises(Unauthorized):  # the wrong secret is another key: looked up, refused
        await asyncio.gather(*(world["auth"](basic(pk, "sk-lf-wrong")) for _ in range(4)))
    assert FakeApiKeys.lookups == 2


@pytest.mark.usefixtures("slow_lookups")
async def test_a_key_change_during_a_lookup_is_not_cached(world: dict) -> None:
    _, pk, sk = await make_project_key(world)
    auth = world["auth"]
    FakeApiKeys.lookups = 0
    started = asyncio.create_task(auth(basic(pk, sk)))
    await asyncio.sleep(0.005)  # the lookup is in flight...
    auth.invalidate()  # ...when another process publishes a key change
    await started
    await auth(basic(pk, sk))
    assert FakeApiKeys.lookups == 2  # what the first lookup read was not kept


async def test_expired_key_is_refused(world: dict) -> None:
    _, pk, sk = await make_project_key(world)
    key = next(iter(world["records"].db["api_keys"].values()))
    key.expires_at = world["clock"].now()
    with pytest.raises(Unauthorized):
        await world["auth"](basic(pk, sk))


async def test_organization_key_is_forbidden_on_project_routes(world: dict) -> None:
    org = await world["create_org"]("Org")
    issued = await world["create_key"](org.id, None)
    assert issued.api_key.scope is ApiKeyScope.ORGANIZATION
    principal = await world["auth"](basic(issued.api_key.public_key, issued.secret_key))
    assert principal.access_level is AccessLevel.ORGANIZATION
    with pytest.raises(Forbidden) as caught:
        require_project(principal)
    assert caught.value.message == ORGANIZATION_KEY_ON_PROJECT_ROUTE


async def test_bearer_public_key_gives_scores_access_only(world: dict) -> None:
    _, pk, _ = await make_project_key(world)
    principal = await world["auth"](f"Bearer {pk}")
    assert principal.access_level is AccessLevel.SCORES
    with pytest.raises(Unauthorized):
        require_project(principal)
    with pytest.raises(Unauthorized):
        await world["auth"]("Bearer pk-lf-unknown")


async def test_headless_init_is_idempotent_and_makes_a_working_key(world: dict) -> None:
    request = HeadlessInitRequest(
        org_id="o1",
        org_name="O",
        project_id="p1",
        project_name="P",
        project_public_key="pk-lf-1",
        project_secret_key="sk-lf-1",
        user_email="a@b.c",
        user_name="A",
        user_password="pw",
    )
    await world["init"](request)
    await world["init"](request)
    db = world["records"].db
    assert len(db["organizations"]) == 1 and len(db["projects"]) == 1
    assert len(db["api_keys"]) == 1 and len(db["users"]) == 1 and len(db["memberships"]) == 1
    user = next(iter(db["users"].values()))
    assert world["hasher"].verify_password("pw", user.password_hash)
    assert not world["hasher"].verify_password("nope", user.password_hash)
    principal = await world["auth"](basic("pk-lf-1", "sk-lf-1"))
    assert principal.project_id == "p1"


async def test_headless_init_rejects_incomplete_keys(world: dict) -> None:
    with pytest.raises(InvalidInput):
        await world["init"](
            HeadlessInitRequest(org_id="o", project_id="p", project_public_key="pk-lf-1")
        )
    with pytest.raises(InvalidInput):
        await world["init"](HeadlessInitRequest(project_id="p"))
