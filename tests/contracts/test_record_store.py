"""Contract of the record store, run against every SQL adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from fathom.adapters.storage.sql.store import SqlRecordStore
from fathom.core.domain.access import (
    ApiKey,
    ApiKeyScope,
    Membership,
    Organization,
    Project,
    Role,
    User,
)
from fathom.core.domain.media import (
    DatasetItemMediaLink,
    Media,
    MediaLinkOrigin,
    ObservationMediaLink,
    TraceMediaLink,
)
from fathom.core.domain.pricing import (
    AttributeSource,
    Model,
    PricingTier,
    PricingTierAttributeCondition,
    PricingTierCondition,
    PricingTierOperator,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRecordStore]:
    if request.param == "sqlite":
        record_store = SqlRecordStore(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    else:
        # Requested only here, so SQLite runs never start a PostgreSQL cluster.
        record_store = SqlRecordStore(request.getfixturevalue("fresh_postgres_url"))
    await record_store.migrate()
    yield record_store
    await record_store.close()


async def seed(store: SqlRecordStore) -> None:
    async with store.unit_of_work() as uow:
        await uow.organizations.add(Organization("o1", "Org", NOW, {"a": 1}))
        await uow.projects.add(Project("p1", "Proj", "o1", NOW))
        await uow.projects.add(Project("p2", "Proj 2", "o1", NOW, retention_days=7))
        await uow.commit()


async def test_migrate_twice_is_harmless(store: SqlRecordStore) -> None:
    await store.migrate()
    await store.ping()


async def test_organizations_and_projects_round_trip(store: SqlRecordStore) -> None:
    await seed(store)
    async with store.unit_of_work() as uow:
        org = await uow.organizations.get("o1")
        projects = await uow.projects.list_for_organization("o1")
        assert await uow.projects.get("missing") is None
    assert org == Organization("o1", "Org", NOW, {"a": 1})
    assert [p.id for p in projects] == ["p1", "p2"]
    assert projects[1].retention_days == 7
    assert projects[0].created_at == NOW


async def test_uncommitted_work_is_rolled_back(store: SqlRecordStore) -> None:
    async with store.unit_of_work() as uow:
        await uow.organizations.add(Organization("o2", "Gone", NOW))
    async with store.unit_of_work() as uow:
        assert await uow.organizations.get("o2") is None


async def test_api_keys_by_hash_public_key_and_project(store: SqlRecordStore) -> None:
    await seed(store)
    key = ApiKey("k1", "pk-lf-1", "hash-1", "sk-lf-...0001", ApiKeyScope.PROJECT, "o1", "p1", NOW)
    org_key = ApiKey(
        "k2",
        "pk-lf-2",
        "hash-2",
        "sk-lf-...0002",
        ApiKeyScope.ORGANIZATION,
        "o1",
        None,
        NOW,
        note="org",
    )
    async with store.unit_of_work() as uow:
        await uow.api_keys.add(key)
        await uow.api_keys.add(org_key)
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.api_keys.get_by_fast_hash("hash-1") == key
        assert await uow.api_keys.get_by_public_key("pk-lf-2") == org_key
        assert await uow.api_keys.get_by_fast_hash("nope") is None
        assert [k.id for k in await uow.api_keys.list_for_project("p1")] == ["k1"]
        assert await uow.api_keys.delete("k1") is True
        assert await uow.api_keys.delete("k1") is False
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.api_keys.get_by_public_key("pk-lf-1") is None


async def test_duplicate_public_key_is_rejected(store: SqlRecordStore) -> None:
    await seed(store)
    key = ApiKey("k1", "pk-lf-1", "hash-1", "x", ApiKeyScope.PROJECT, "o1", "p1", NOW)
    async with store.unit_of_work() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own IntegrityError
        async with store.unit_of_work() as uow:
            await uow.api_keys.add(
                ApiKey("k9", "pk-lf-1", "hash-9", "x", ApiKeyScope.PROJECT, "o1", "p1", NOW)
            )
            await uow.commit()


async def test_users_and_memberships(store: SqlRecordStore) -> None:
    await seed(store)
    user = User("u1", "a@example.com", "A", NOW, password_hash="h", admin=True)
    async with store.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.memberships.add(Membership("o1", "u1", Role.ADMIN, NOW))
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.users.get_by_email("a@example.com") == user
        assert await uow.memberships.get("o1", "u1") == Membership("o1", "u1", Role.ADMIN, NOW)
        assert await uow.memberships.get("o1", "nobody") is None


def custom_model(model_id: str = "m1", project_id: str = "p1", name: str = "my-gpt") -> Model:
    return Model(
        id=model_id,
        project_id=project_id,
        model_name=name,
        match_pattern=f"(?i)^{name}$",
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        unit="TOKENS",
        tokenizer_id="openai",
        tokenizer_config={"tokenizerModel": "gpt-4o", "tokensPerMessage": 3},
        pricing_tiers=(
            PricingTier(f"{model_id}-default", "Standard", True, 0, (), {"input": Decimal("1E-7")}),
            PricingTier(
                f"{model_id}-large",
                "Large",
                False,
                1,
                (
                    PricingTierCondition("^input", PricingTierOperator.GT, 200_000, False),
                    PricingTierAttributeCondition(
                        AttributeSource.MODEL_PARAMETERS, "service_tier", ("fast", "priority")
                    ),
                ),
                {"input": Decimal("0.0000025")},
            ),
        ),
        created_at=NOW,
        updated_at=NOW,
    )


async def test_models_round_trip_with_exact_prices_and_tiers(store: SqlRecordStore) -> None:
    await seed(store)
    model = custom_model()
    async with store.unit_of_work() as uow:
        await uow.models.add(model)
        await uow.commit()
    async with store.unit_of_work() as uow:
        found = await uow.models.get("p1", "m1")
        by_name = await uow.models.get_by_name("p1", "my-gpt")
        assert await uow.models.get("p2", "m1") is None  # another project's model is invisible
        assert await uow.models.get_by_name("p2", "my-gpt") is None
    assert found == model == by_name
    assert found is not None
    assert found.pricing_tiers[0].prices["input"] == Decimal("0.0000001")
    assert found.pricing_tiers[1].conditions == model.pricing_tiers[1].conditions


async def test_models_listed_per_project_and_all(store: SqlRecordStore) -> None:
    await seed(store)
    async with store.unit_of_work() as uow:
        await uow.models.add(custom_model("m1", "p1", "a"))
        await uow.models.add(custom_model("m2", "p2", "b"))
        await uow.models.add(custom_model("m3", "p1", "c"))
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert [m.id for m in await uow.models.list_for_project("p1")] == ["m1", "m3"]
        assert sorted(m.id for m in await uow.models.list_all()) == ["m1", "m2", "m3"]


async def test_model_delete_is_scoped_to_its_project(store: SqlRecordStore) -> None:
    await seed(store)
    async with store.unit_of_work() as uow:
        await uow.models.add(custom_model())
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.models.delete("p2", "m1") is False
        assert await uow.models.delete("p1", "m1") is True
        assert await uow.models.delete("p1", "m1") is False
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.models.list_all() == []


async def test_model_without_optional_fields(store: SqlRecordStore) -> None:
    await seed(store)
    model = Model(
        "m9",
        "flat",
        "flat",
        project_id="p1",
        pricing_tiers=(PricingTier("t", "Standard", True, 0, (), {"total": Decimal(1)}),),
        created_at=NOW,
        updated_at=NOW,
    )
    async with store.unit_of_work() as uow:
        await uow.models.add(model)
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.models.get("p1", "m9") == model


# --- media links ------------------------------------------------------------------------------

UPLOAD = MediaLinkOrigin.CLIENT_UPLOAD


def media_record(project_id: str, media_id: str) -> Media:
    return Media(
        id=media_id,
        project_id=project_id,
        sha256_hash=media_id.ljust(44, "="),
        content_type="image/png",
        content_length=3,
        blob_key=f"media/{project_id}/{media_id}.png",
        created_at=NOW,
        updated_at=NOW,
    )


def trace_link(
    trace_id: str, media_id: str, field: str = "input", project: str = "p1"
) -> TraceMediaLink:
    return TraceMediaLink(project, media_id, trace_id, field, UPLOAD, NOW)


def observation_link(
    trace_id: str, observation_id: str, media_id: str, project: str = "p1"
) -> ObservationMediaLink:
    return ObservationMediaLink(project, media_id, trace_id, observation_id, "output", UPLOAD, NOW)


def item_link(item_id: str, media_id: str, project: str = "p1") -> DatasetItemMediaLink:
    return DatasetItemMediaLink(project, media_id, "d1", item_id, "expectedOutput", UPLOAD, NOW)


async def seed_media(store: SqlRecordStore) -> None:
    await seed(store)
    async with store.unit_of_work() as uow:
        for project_id, media_id in [("p1", "m1"), ("p1", "m2"), ("p1", "m3"), ("p2", "m1")]:
            await uow.media.upsert(media_record(project_id, media_id))
        await uow.commit()


async def test_media_links_are_stored_once_per_entity_media_and_field(
    store: SqlRecordStore,
) -> None:
    await seed_media(store)
    later = NOW + timedelta(hours=1)
    async with store.unit_of_work() as uow:
        await uow.media.add_links(
            [
                trace_link("t1", "m1"),
                trace_link("t1", "m1"),  # twice in one call
                trace_link("t1", "m1", "output"),
                observation_link("t1", "o1", "m1"),
                item_link("i1", "m2"),
                trace_link("t1", "m1", project="p2"),
            ]
        )
        await uow.commit()
    async with store.unit_of_work() as uow:
        await uow.media.add_links(
            [
                TraceMediaLink("p1", "m1", "t1", "input", MediaLinkOrigin.UNKNOWN, later),
                observation_link("t1", "o1", "m1"),
                item_link("i1", "m2"),
            ]
        )
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.media.links_of_traces("p1", ["t1", "t9"]) == [
            trace_link("t1", "m1"),  # the first one stored stays as it was
            trace_link("t1", "m1", "output"),
            observation_link("t1", "o1", "m1"),
        ]
        assert await uow.media.links_of_traces("p2", ["t1"]) == [
            trace_link("t1", "m1", project="p2")
        ]
        assert await uow.media.links_of_dataset_items("p1", ["i1"]) == [item_link("i1", "m2")]
        assert await uow.media.links_of_dataset_items("p2", ["i1"]) == []


async def test_concurrent_writers_of_one_link_store_it_once(store: SqlRecordStore) -> None:
    await seed_media(store)

    async def add() -> None:
        async with store.unit_of_work() as uow:
            await uow.media.add_links([trace_link("t1", "m1"), item_link("i1", "m1")])
            await asyncio.sleep(0.05)  # both transactions are open at once
            await uow.commit()

    await asyncio.gather(*(add() for _ in range(4)))
    async with store.unit_of_work() as uow:
        assert await uow.media.links_of_traces("p1", ["t1"]) == [trace_link("t1", "m1")]
        assert await uow.media.links_of_dataset_items("p1", ["i1"]) == [item_link("i1", "m1")]


async def test_links_need_their_media(store: SqlRecordStore) -> None:
    await seed_media(store)
    with pytest.raises(IntegrityError):
        async with store.unit_of_work() as uow:
            await uow.media.add_links([trace_link("t1", "missing")])


async def test_deleting_links_of_traces_or_items_answers_their_media(
    store: SqlRecordStore,
) -> None:
    await seed_media(store)
    async with store.unit_of_work() as uow:
        await uow.media.add_links(
            [
                trace_link("t1", "m1"),
                observation_link("t1", "o1", "m2"),
                trace_link("t2", "m1"),
                trace_link("t1", "m1", project="p2"),
                item_link("i1", "m3"),
                item_link("i2", "m3"),
            ]
        )
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.media.delete_links_of_traces("p1", ["t1", "t9"]) == {"m1", "m2"}
        assert await uow.media.delete_links_of_traces("p1", ["t1"]) == set()
        assert await uow.media.delete_links_of_dataset_items("p1", ["i1"]) == {"m3"}
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.media.links_of_traces("p1", ["t1", "t2"]) == [trace_link("t2", "m1")]
        assert await uow.media.links_of_traces("p2", ["t1"]) == [
            trace_link("t1", "m1", project="p2")
        ]
        assert await uow.media.links_of_dataset_items("p1", ["i1", "i2"]) == [item_link("i2", "m3")]


async def test_only_media_nothing_links_to_are_deleted(store: SqlRecordStore) -> None:
    await seed_media(store)
    async with store.unit_of_work() as uow:
        await uow.media.add_links([trace_link("t2", "m1"), item_link("i1", "m3")])
        await uow.commit()
    many = [f"x{n}" for n in range(2500)]  # more ids than one statement takes
    async with store.unit_of_work() as uow:
        deleted = await uow.media.delete_unlinked("p1", ["m1", "m2", "m3", "missing", *many])
        await uow.commit()
    assert deleted == [media_record("p1", "m2")]
    async with store.unit_of_work() as uow:
        assert await uow.media.get("p1", "m2") is None
        assert await uow.media.get("p1", "m1") is not None  # a trace links to it
        assert await uow.media.get("p1", "m3") is not None  # a dataset item links to it
        assert await uow.media.get("p2", "m1") is not None  # another project's
        assert await uow.media.delete_unlinked("p1", []) == []


async def test_deleting_many_traces_deletes_all_their_links(store: SqlRecordStore) -> None:
    await seed_media(store)
    trace_ids = [f"t{n}" for n in range(2500)]
    async with store.unit_of_work() as uow:
        await uow.media.add_links([trace_link(t, "m1") for t in trace_ids])
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert len(await uow.media.links_of_traces("p1", trace_ids)) == 2500
        assert await uow.media.delete_links_of_traces("p1", trace_ids) == {"m1"}
        assert await uow.media.links_of_traces("p1", trace_ids) == []
