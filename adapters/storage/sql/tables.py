"""Table definitions of the record store (SQLAlchemy Core; no ORM on purpose: bulk and
simple statements are both faster and clearer here). Migrations create these tables."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from fathom.adapters.storage.sql.types import Json, UtcDateTime

metadata = MetaData()

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("metadata", Json, nullable=False, default=dict),
    Column("created_at", UtcDateTime(), nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column(
        "organization_id",
        String(255),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("metadata", Json, nullable=False, default=dict),
    Column("retention_days", Integer, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(255), nullable=True),
    Column("password_hash", Text, nullable=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

memberships = Table(
    "organization_memberships",
    metadata,
    Column(
        "organization_id",
        String(255),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(255), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("public_key", String(255), nullable=False, unique=True),
    Column("fast_hashed_secret_key", String(128), nullable=False, unique=True),
    Column("display_secret_key", String(64), nullable=False),
    Column("scope", String(32), nullable=False),
    Column(
        "organization_id",
        String(255),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    Column("note", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
)

# A project's own model definitions (built-ins come from the bundled price table). Tiers with
# their conditions and prices live in one JSON column: they are always read and written with
# the model, and prices are stored as decimal strings so they stay exact on every engine.
models = Table(
    "models",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("model_name", String(255), nullable=False),
    Column("match_pattern", Text, nullable=False),
    Column("start_date", UtcDateTime(), nullable=True),
    Column("unit", String(32), nullable=True),
    Column("tokenizer_id", String(64), nullable=True),
    Column("tokenizer_config", Json, nullable=True),
    Column("pricing_tiers", Json, nullable=False, default=list),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_models_project_id_model_name", "project_id", "model_name"),
)
