"""Datasets, versioned dataset items, dataset runs (experiments) and run items.

Revision ID: 0005_datasets
Revises: 0004_evaluation
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_datasets"
down_revision = "0004_evaluation"
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


# SQL NULL rather than JSON null for absent values, as the table definitions say.
Json = _json(none_as_null=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("name", _string(), nullable=False),
        sa.Column("description", _string(), nullable=True),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("input_schema", Json, nullable=True),
        sa.Column("expected_output_schema", Json, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_id_name"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("project_id", _string(255), primary_key=True),
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_deleted", sa.Boolean, nullable=False),
        sa.Column("dataset_id", _string(255), nullable=False),
        sa.Column("status", _string(16), nullable=False),
        sa.Column("input", Json, nullable=True),
        sa.Column("expected_output", Json, nullable=True),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("source_trace_id", _string(255), nullable=True),
        sa.Column("source_observation_id", _string(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "dataset_id"],
            ["datasets.project_id", "datasets.id"],
            ondelete="CASCADE",
            name="fk_dataset_items_dataset",
        ),
    )
    op.create_index(
        "ix_dataset_items_dataset_current",
        "dataset_items",
        ["project_id", "dataset_id", "valid_to"],
    )
    op.create_index(
        "ix_dataset_items_id_current", "dataset_items", ["project_id", "id", "valid_to"]
    )
    op.create_index(
        "ix_dataset_items_source_trace", "dataset_items", ["project_id", "source_trace_id"]
    )
    op.create_table(
        "dataset_runs",
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("dataset_id", _string(255), nullable=True),
        sa.Column("name", _string(), nullable=False),
        sa.Column("description", _string(), nullable=True),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "project_id", "dataset_id", "name", name="uq_dataset_runs_dataset_name"
        ),
    )
    op.create_index(
        "ix_dataset_runs_dataset_created",
        "dataset_runs",
        ["project_id", "dataset_id", "created_at"],
    )
    op.create_table(
        "dataset_run_items",
        sa.Column("project_id", _string(255), primary_key=True),
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("dataset_run_id", _string(255), nullable=False),
        sa.Column("dataset_item_id", _string(255), nullable=False),
        sa.Column("trace_id", _string(255), nullable=False),
        sa.Column("observation_id", _string(255), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("level", _string(16), nullable=False),
        sa.Column("environment", _string(255), nullable=False),
        sa.Column("dataset_item_version", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expected_output", Json, nullable=True),
        sa.Column("item_metadata", Json, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "dataset_run_id"],
            ["dataset_runs.project_id", "dataset_runs.id"],
            ondelete="CASCADE",
            name="fk_dataset_run_items_run",
        ),
    )
    op.create_index(
        "ix_dataset_run_items_run",
        "dataset_run_items",
        ["project_id", "dataset_run_id", "created_at"],
    )
    op.create_index("ix_dataset_run_items_start", "dataset_run_items", ["project_id", "start_time"])
    op.create_index(
        "ix_dataset_run_items_item", "dataset_run_items", ["project_id", "dataset_item_id"]
    )


def downgrade() -> None:
    op.drop_table("dataset_run_items")
    op.drop_table("dataset_runs")
    op.drop_table("dataset_items")
    op.drop_table("datasets")
