"""Prompt management: versions, label and tag indexes, references, protected labels.

Revision ID: 0003_prompts
Revises: 0002_models
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_prompts"
down_revision = "0002_models"
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
        "prompts",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", _string(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", _string(16), nullable=False),
        sa.Column("prompt", _json(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("commit_message", _string(), nullable=True),
        sa.Column("created_by", _string(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "project_id", "name", "version", name="uq_prompts_project_name_version"
        ),
    )
    op.create_table(
        "prompt_labels",
        sa.Column("project_id", _string(255), nullable=False),
        sa.Column("name", _string(255), nullable=False),
        sa.Column("label", _string(64), nullable=False),
        sa.Column(
            "prompt_id",
            _string(255),
            sa.ForeignKey("prompts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("project_id", "name", "label", name="pk_prompt_labels"),
    )
    op.create_index("ix_prompt_labels_prompt_id", "prompt_labels", ["prompt_id"])
    op.create_table(
        "prompt_tags",
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", _string(255), nullable=False),
        sa.Column("tag", _string(), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "name", "tag", name="pk_prompt_tags"),
    )
    op.create_index("ix_prompt_tags_project_id_tag", "prompt_tags", ["project_id", "tag"])
    op.create_table(
        "prompt_dependencies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", _string(255), nullable=False),
        sa.Column(
            "parent_id",
            _string(255),
            sa.ForeignKey("prompts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("child_name", _string(255), nullable=False),
        sa.Column("child_label", _string(64), nullable=True),
        sa.Column("child_version", sa.Integer, nullable=True),
    )
    op.create_index("ix_prompt_dependencies_parent_id", "prompt_dependencies", ["parent_id"])
    op.create_index(
        "ix_prompt_dependencies_project_id_child_name",
        "prompt_dependencies",
        ["project_id", "child_name"],
    )
    op.create_table(
        "prompt_protected_labels",
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", _string(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "label", name="pk_prompt_protected_labels"),
    )


def downgrade() -> None:
    op.drop_table("prompt_protected_labels")
    op.drop_table("prompt_dependencies")
    op.drop_table("prompt_tags")
    op.drop_table("prompt_labels")
    op.drop_table("prompts")
