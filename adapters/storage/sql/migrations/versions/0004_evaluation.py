"""Score configs, comments, annotation queues with their items and assignments.

Revision ID: 0004_evaluation
Revises: 0003_prompts
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_evaluation"
down_revision = "0003_prompts"
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


def _project_id(*, primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "project_id",
        _string(255),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def _queue_id(*, primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "queue_id",
        _string(255),
        sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "score_configs",
        sa.Column("id", _string(255), primary_key=True),
        _project_id(),
        sa.Column("name", _string(255), nullable=False),
        sa.Column("data_type", _string(32), nullable=False),
        sa.Column("is_archived", sa.Boolean, nullable=False),
        sa.Column("min_value", sa.Float, nullable=True),
        sa.Column("max_value", sa.Float, nullable=True),
        sa.Column("categories", _json(), nullable=True),
        sa.Column("description", _string(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_score_configs_project_id_created_at", "score_configs", ["project_id", "created_at"]
    )
    op.create_table(
        "comments",
        sa.Column("id", _string(255), primary_key=True),
        _project_id(),
        sa.Column("object_type", _string(32), nullable=False),
        sa.Column("object_id", _string(800), nullable=False),
        sa.Column("content", _string(), nullable=False),
        sa.Column("author_user_id", _string(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_comments_project_id_object", "comments", ["project_id", "object_type", "object_id"]
    )
    op.create_table(
        "annotation_queues",
        sa.Column("id", _string(255), primary_key=True),
        _project_id(),
        sa.Column("name", _string(255), nullable=False),
        sa.Column("description", _string(), nullable=True),
        sa.Column("score_config_ids", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_annotation_queues_project_id_name"),
    )
    op.create_table(
        "annotation_queue_items",
        sa.Column("id", _string(255), primary_key=True),
        _project_id(),
        _queue_id(),
        sa.Column("object_id", _string(800), nullable=False),
        sa.Column("object_type", _string(32), nullable=False),
        sa.Column("status", _string(32), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_by_user_id", _string(255), nullable=True),
        sa.Column("annotator_user_id", _string(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_annotation_queue_items_queue",
        "annotation_queue_items",
        ["project_id", "queue_id", "status"],
    )
    op.create_index(
        "ix_annotation_queue_items_object",
        "annotation_queue_items",
        ["project_id", "object_id", "object_type"],
    )
    op.create_table(
        "annotation_queue_assignments",
        _project_id(primary_key=True),
        _queue_id(primary_key=True),
        sa.Column(
            "user_id",
            _string(255),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("annotation_queue_assignments")
    op.drop_table("annotation_queue_items")
    op.drop_table("annotation_queues")
    op.drop_table("comments")
    op.drop_table("score_configs")
