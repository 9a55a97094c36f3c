"""Project-specific models and prices.

Revision ID: 0002_models
Revises: 0001_access
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_models"
down_revision = "0001_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("match_pattern", sa.Text, nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("tokenizer_id", sa.String(64), nullable=True),
        sa.Column("tokenizer_config", sa.JSON, nullable=True),
        sa.Column("pricing_tiers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_models_project_id_model_name", "models", ["project_id", "model_name"])


def downgrade() -> None:
    op.drop_table("models")
