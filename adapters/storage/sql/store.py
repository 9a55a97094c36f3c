"""Record store on SQLAlchemy 2 (async): SQLite embedded, Postgres at scale."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from alembic import command
from alembic.config import Config
from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.engine import URL, Connection, RowMapping, make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fathom.adapters.storage.sql import tables as t
from fathom.adapters.storage.sql.datasets import SqlDatasetRepository
from fathom.adapters.storage.sql.evaluation import (
    SqlAnnotationQueueRepository,
    SqlCommentRepository,
    SqlScoreConfigRepository,
)
from fathom.adapters.storage.sql.media import SqlMediaRepository
from fathom.adapters.storage.sql.prompts import SqlPromptRepository
from fathom.adapters.storage.sql.repository import SqlRepository
from fathom.adapters.storage.sql.types import aware
from fathom.core.domain.access import (
    ApiKey,
    ApiKeyScope,
    Membership,
    Organization,
    Project,
    Role,
    User,
)
from fathom.core.domain.errors import (
    ConfigurationError,
    FathomError,
    InvalidInput,
    Unavailable,
)
from fathom.core.domain.pricing import Model, PricingTier
from fathom.core.usecases.models import condition_to_json, tier_from_json

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SqlOptions(BaseModel):
    """Options of the `sqlite` and `postgres` record adapters."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    pool_size: int = 10
    echo: bool = False


class SqlOrganizationRepository(SqlRepository):
    async def get(self, organization_id: str) -> Organization | None:
        row = await self._one(
            select(t.organizations).where(t.organizations.c.id == organization_id)
        )
        if row is None:
            return None
        return Organization(
            id=row["id"],
            name=row["name"],
            created_at=aware(row["created_at"]),
            metadata=row["metadata"] or {},
        )

    async def add(self, organization: Organization) -> None:
        await self._insert(
            t.organizations,
            {
                "id": organization.id,
                "name": organization.name,
                "metadata": organization.metadata,
                "created_at": organization.created_at,
            },
        )


def _project(row: RowMapping) -> Project:
    return Project(
        id=row["id"],
        name=row["name"],
        organization_id=row["organization_id"],
        created_at=aware(row["created_at"]),
        metadata=row["metadata"] or {},
        retention_days=row["retention_days"],
    )


class SqlProjectRepository(SqlRepository):
    async def get(self, project_id: str) -> Project | None:
        return await self._one_as(select(t.projects).where(t.projects.c.id == project_id), _project)

    async def add(self, project: Project) -> None:
        await self._insert(
            t.projects,
            {
                "id": project.id,
                "name": project.name,
                "organization_id": project.organization_id,
                "metadata": project.metadata,
                "retention_days": project.retention_days,
                "created_at": project.created_at,
            },
        )

    async def list_for_organization(self, organization_id: str) -> list[Project]:
        rows = await self._all(
            select(t.projects)
            .where(t.projects.c.organization_id == organization_id)
            .order_by(t.projects.c.created_at)
        )
        return [_project(row) for row in rows]


class SqlUserRepository(SqlRepository):
    async def get_by_email(self, email: str) -> User | None:
        row = await self._one(select(t.users).where(t.users.c.email == email))
        if row is None:
            return None
        return User(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            created_at=aware(row["created_at"]),
            password_hash=row["password_hash"],
            admin=row["admin"],
        )

    async def add(self, user: User) -> None:
        await self._insert(
            t.users,
            {
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "password_hash": user.password_hash,
                "admin": user.admin,
                "created_at": user.created_at,
            },
        )


class SqlMembershipRepository(SqlRepository):
    async def get(self, organization_id: str, user_id: str) -> Membership | None:
        row = await self._one(
            select(t.memberships).where(
                t.memberships.c.organization_id == organization_id,
                t.memberships.c.user_id == user_id,
            )
        )
        if row is None:
            return None
        return Membership(
            organization_id=row["organization_id"],
            user_id=row["user_id"],
            role=Role(row["role"]),
            created_at=aware(row["created_at"]),
        )

    async def add(self, membership: Membership) -> None:
        await self._insert(
            t.memberships,
            {
                "organization_id": membership.organization_id,
                "user_id": membership.user_id,
                "role": membership.role.value,
                "created_at": membership.created_at,
            },
        )


def _api_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        public_key=row["public_key"],
        fast_hashed_secret_key=row["fast_hashed_secret_key"],
        display_secret_key=row["display_secret_key"],
        scope=ApiKeyScope(row["scope"]),
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        created_at=aware(row["created_at"]),
        note=row["note"],
        expires_at=aware(row["expires_at"]),
        last_used_at=aware(row["last_used_at"]),
    )


class SqlApiKeyRepository(SqlRepository):
    async def get_by_fast_hash(self, fast_hashed_secret_key: str) -> ApiKey | None:
        return await self._one_as(
            select(t.api_keys).where(t.api_keys.c.fast_hashed_secret_key == fast_hashed_secret_key),
            _api_key,
        )

    async def get_by_public_key(self, public_key: str) -> ApiKey | None:
        return await self._one_as(
            select(t.api_keys).where(t.api_keys.c.public_key == public_key), _api_key
        )

    async def add(self, api_key: ApiKey) -> None:
        await self._insert(
            t.api_keys,
            {
                "id": api_key.id,
                "public_key": api_key.public_key,
                "fast_hashed_secret_key": api_key.fast_hashed_secret_key,
                "display_secret_key": api_key.display_secret_key,
                "scope": api_key.scope.value,
                "organization_id": api_key.organization_id,
                "project_id": api_key.project_id,
                "note": api_key.note,
                "created_at": api_key.created_at,
                "expires_at": api_key.expires_at,
                "last_used_at": api_key.last_used_at,
            },
        )

    async def list_for_project(self, project_id: str) -> list[ApiKey]:
        rows = await self._all(
            select(t.api_keys)
            .where(t.api_keys.c.project_id == project_id)
            .order_by(t.api_keys.c.created_at)
        )
        return [_api_key(row) for row in rows]

    async def delete(self, api_key_id: str) -> bool:
        result = await self._uow.connection.execute(
            delete(t.api_keys).where(t.api_keys.c.id == api_key_id)
        )
        return bool(result.rowcount)


def _tier_record(tier: PricingTier) -> dict[str, Any]:
    return {
        "id": tier.id,
        "name": tier.name,
        "isDefault": tier.is_default,
        "priority": tier.priority,
        "conditions": [condition_to_json(condition) for condition in tier.conditions],
        # Strings, not JSON numbers: a float would round the price on the way through.
        "prices": {key: str(price) for key, price in tier.prices.items()},
    }


def _model(row: RowMapping) -> Model:
    return Model(
        id=row["id"],
        project_id=row["project_id"],
        model_name=row["model_name"],
        match_pattern=row["match_pattern"],
        start_date=aware(row["start_date"]),
        unit=row["unit"],
        tokenizer_id=row["tokenizer_id"],
        tokenizer_config=row["tokenizer_config"],
        pricing_tiers=tuple(tier_from_json(raw) for raw in row["pricing_tiers"] or ()),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )


class SqlModelRepository(SqlRepository):
    async def get(self, project_id: str, model_id: str) -> Model | None:
        return await self._one_as(
            select(t.models).where(t.models.c.project_id == project_id, t.models.c.id == model_id),
            _model,
        )

    async def get_by_name(self, project_id: str, model_name: str) -> Model | None:
        return await self._one_as(
            select(t.models)
            .where(t.models.c.project_id == project_id, t.models.c.model_name == model_name)
            .limit(1),
            _model,
        )

    async def add(self, model: Model) -> None:
        if model.project_id is None:
            raise ValueError("built-in models are not stored; give the model a project_id")
        created_at = model.created_at or datetime.now(UTC)
        await self._insert(
            t.models,
            {
                "id": model.id,
                "project_id": model.project_id,
                "model_name": model.model_name,
                "match_pattern": model.match_pattern,
                "start_date": model.start_date,
                "unit": model.unit,
                "tokenizer_id": model.tokenizer_id,
                "tokenizer_config": (
                    dict(model.tokenizer_config) if model.tokenizer_config is not None else None
                ),
                "pricing_tiers": [_tier_record(tier) for tier in model.pricing_tiers],
                "created_at": created_at,
                "updated_at": model.updated_at or created_at,
            },
        )

    async def list_for_project(self, project_id: str) -> list[Model]:
        rows = await self._all(
            select(t.models)
            .where(t.models.c.project_id == project_id)
            .order_by(t.models.c.created_at, t.models.c.id)
        )
        return [_model(row) for row in rows]

    async def list_all(self) -> list[Model]:
        rows = await self._all(select(t.models).order_by(t.models.c.created_at, t.models.c.id))
        return [_model(row) for row in rows]

    async def delete(self, project_id: str, model_id: str) -> bool:
        result = await self._uow.connection.execute(
            delete(t.models).where(t.models.c.project_id == project_id, t.models.c.id == model_id)
        )
        return bool(result.rowcount)


class SqlUnitOfWork:
    """One transaction; repositories share its connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self.organizations = SqlOrganizationRepository(self)
        self.projects = SqlProjectRepository(self)
        self.users = SqlUserRepository(self)
        self.memberships = SqlMembershipRepository(self)
        self.api_keys = SqlApiKeyRepository(self)
        self.models = SqlModelRepository(self)
        self.prompts = SqlPromptRepository(self)
        self.score_configs = SqlScoreConfigRepository(self)
        self.comments = SqlCommentRepository(self)
        self.annotation_queues = SqlAnnotationQueueRepository(self)
        self.datasets = SqlDatasetRepository(self)
        self.media = SqlMediaRepository(self)

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._connection

    async def __aenter__(self) -> Self:
        try:
            self._connection = await self._engine.connect()
        except Exception as exc:
            raise _translate(exc, self._engine.url) or exc from exc
        await self._connection.begin()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: object
    ) -> None:
        assert self._connection is not None
        try:
            await self._connection.rollback()
        except Exception:
            # The connection is gone (that may be why we are leaving); nothing to undo.
            if error is None:
                raise
        finally:
            await self._connection.close()
            self._connection = None
        if isinstance(error, DBAPIError):
            # Drivers' errors reach callers as domain errors: a value the engine cannot
            # store is the client's to fix (400), a lost database is temporary (503).
            translated = _translate(error, self._engine.url)
            if translated is not None:
                raise translated from error

    async def commit(self) -> None:
        await self.connection.commit()
        await self.connection.begin()


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# Any constant will do, as long as it is the same in every process sharing the database.
_MIGRATION_LOCK = int.from_bytes(b"fathom:m", "big") & 0x7FFF_FFFF_FFFF_FFFF
# Connection options of Prisma (Langfuse's DATABASE_URL) that no Python driver knows.
_PRISMA_OPTIONS = ("connection_limit", "pool_timeout", "connect_timeout", "socket_timeout")


def normalise_url(url: str) -> str:
    """A database URL as operators write it (libpq, Langfuse's `DATABASE_URL`) as an
    SQLAlchemy async URL: `postgres://` and `postgresql://` use asyncpg, `sslmode` becomes
    asyncpg's `ssl`, Prisma's `schema` sets the search path and its pool options are dropped."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"FATHOM_RECORDS__URL is not a database URL: {exc}") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername != "postgresql+asyncpg":
        return parsed.render_as_string(hide_password=False)
    query = dict(parsed.query)
    if "sslmode" in query:
        query.setdefault("ssl", query.pop("sslmode"))
    for option in _PRISMA_OPTIONS:
        query.pop(option, None)
    return parsed.set(query=query).render_as_string(hide_password=False)


def masked(url: URL | str) -> str:
    """The URL fit for logs and error messages: the password replaced by `***`."""
    try:
        return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def _one_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return " ".join(message.split())


def _where(url: URL) -> str:
    """The setting an operator would fix, with its value (password masked)."""
    if url.get_backend_name() == "sqlite":
        return f"FATHOM_RECORDS__PATH={url.database}"
    return f"FATHOM_RECORDS__URL={masked(url)}"


def _translate(exc: BaseException, url: URL) -> FathomError | None:
    """The domain error for a driver's error, naming the setting; None: not ours to map."""
    where = _where(url)
    orig = getattr(exc, "orig", None) or exc
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if isinstance(exc, DataError) or sqlstate.startswith("22"):
        # Class 22, "data exception": too long, out of range, or a character PostgreSQL
        # cannot store (U+0000 in text or JSONB).
        return InvalidInput(
            f"Invalid request data: the record store refused a value: {_one_line(exc)}"
        )
    if sqlstate in ("28000", "28P01", "3D000", "42501") or type(orig).__name__ in (
        "InvalidPasswordError",
        "InvalidAuthorizationSpecificationError",
        "InvalidCatalogNameError",
    ):
        # Wrong password, unknown role or database, missing privilege: retrying won't help.
        return ConfigurationError(f"{where}: the database refused the connection: {_one_line(exc)}")
    if isinstance(exc, OSError | TimeoutError | OperationalError | InterfaceError) or (
        sqlstate.startswith(("08", "57P"))
    ):
        return Unavailable(f"{where}: the record store is unavailable: {_one_line(exc)}")
    return None


class SqlRecordStore:
    """`RecordStore` on SQLAlchemy: SQLite (aiosqlite) or PostgreSQL (asyncpg).

    Driver errors leave as domain errors with one line naming `FATHOM_RECORDS__URL` (password
    masked): `Unavailable` when the database cannot be reached, `ConfigurationError` when it
    refuses the credentials or the database does not exist, `InvalidInput` for a value it
    cannot store."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        url = normalise_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if not url.startswith("sqlite"):
            kwargs["pool_size"] = pool_size
            kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql+asyncpg"):
            # asyncpg waits 60 s by default: a start-up against a wrong host would hang.
            connect_args: dict[str, Any] = {"timeout": connect_timeout}
            parsed = make_url(url)
            schema = parsed.query.get("schema")
            if isinstance(schema, str) and schema:
                connect_args["server_settings"] = {"search_path": schema}
                url = parsed.difference_update_query(["schema"]).render_as_string(
                    hide_password=False
                )
            kwargs["connect_args"] = connect_args
        self.url = url
        try:
            self.engine = create_async_engine(url, **kwargs)
        except ImportError as exc:
            raise ConfigurationError(
                f"FATHOM_RECORDS__URL={masked(url)} needs the {exc.name} driver: "
                "pip install 'fathom-llm[scale]'"
            ) from None
        except ArgumentError as exc:
            raise ConfigurationError(f"FATHOM_RECORDS__URL={masked(url)}: {exc}") from None
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _enable_sqlite_pragmas)

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    async def migrate(self) -> None:
        def upgrade(connection: Connection) -> None:
            if connection.dialect.name == "postgresql":
                # Web and worker processes start together and each migrates: the first to
                # take the lock upgrades, the others then find the schema at head. DDL is
                # transactional on PostgreSQL, so the lock spans the whole upgrade.
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        try:
            async with self.engine.begin() as connection:
                await connection.run_sync(upgrade)
        except Exception as exc:
            translated = _translate(exc, self.engine.url)
            if translated is None or isinstance(translated, InvalidInput):
                raise
            raise translated from exc

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            translated = _translate(exc, self.engine.url)
            raise (
                translated
                if isinstance(translated, ConfigurationError | Unavailable)
                else Unavailable(
                    f"{_where(self.engine.url)}: the record store is unusable: {_one_line(exc)}"
                )
            ) from exc

    async def close(self) -> None:
        await self.engine.dispose()
