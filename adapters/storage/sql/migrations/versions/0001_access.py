"""Organizations, projects, users, memberships, API keys.

Revision ID: 0001_access
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_access"
down_revision = None
branch_labels = None
depends_on = None


# PostgreSQL: TEXT in byte order and JSONB (see 0006_postgres_types); SQLite: unchanged.
def _string(length: int | None = None) -> sa.types.TypeEngine:
    base = sa.String(length) if length is not None else sa.Text()
    return base.with_variant(sa.Text(collation="C"), "postgresql")


def _json(none_as_null: bool = False) -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=none_as_null).with_variant(
        postgresql.JSONB(none_as_null=none_as_null), "postgresql"
    )


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("name", _string(255), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("name", _string(255), nullable=False),
        sa.Column(
            "organization_id",
            _string(255),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_projects_organization_id", "projects", ["organization_id"])
    op.create_table(
        "users",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("email", _string(320), nullable=False, unique=True),
        sa.Column("name", _string(255), nullable=True),
        sa.Column("password_hash", _string(), nullable=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "organization_memberships",
        sa.Column(
            "organization_id",
            _string(255),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", _string(255), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", _string(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("public_key", _string(255), nullable=False, unique=True),
        sa.Column("fast_hashed_secret_key", _string(128), nullable=False, unique=True),
        sa.Column("display_secret_key", _string(64), nullable=False),
        sa.Column("scope", _string(32), nullable=False),
        sa.Column(
            "organization_id",
            _string(255),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("note", _string(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_organization_id", "api_keys", ["organization_id"])
    op.create_index("ix_api_keys_project_id", "api_keys", ["project_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("organization_memberships")
    op.drop_table("users")
    op.drop_table("projects")
    op.drop_table("organizations")
