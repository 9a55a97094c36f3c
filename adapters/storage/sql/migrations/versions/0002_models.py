"""Project-specific models and prices.

Revision ID: 0002_models
Revises: 0001_access
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_models"
down_revision = "0001_access"
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
        "models",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model_name", _string(255), nullable=False),
        sa.Column("match_pattern", _string(), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unit", _string(32), nullable=True),
        sa.Column("tokenizer_id", _string(64), nullable=True),
        sa.Column("tokenizer_config", _json(), nullable=True),
        sa.Column("pricing_tiers", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_models_project_id_model_name", "models", ["project_id", "model_name"])


def downgrade() -> None:
    op.drop_table("models")
