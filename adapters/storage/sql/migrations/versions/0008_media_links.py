"""Links of media to the trace, observation and dataset item fields they were requested for
(upstream's trace_media, observation_media and dataset_item_media). Each table's primary key
is upstream's unique constraint of it; links are deleted with their media record.

On PostgreSQL strings are TEXT in byte order, as 0006_postgres_types made every older one.

Revision ID: 0008_media_links
Revises: 0007_media
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_media_links"
down_revision = "0007_media"
branch_labels = None
depends_on = None

TABLES = ("trace_media", "observation_media", "dataset_item_media")


def _string(length: int | None = None) -> sa.types.TypeEngine:
    plain = sa.String(length) if length else sa.Text()
    return plain.with_variant(sa.Text(collation="C"), "postgresql")


def _to_media(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id", "media_id"],
        ["media.project_id", "media.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_media",
    )


def upgrade() -> None:
    op.create_table(
        "trace_media",
        sa.Column("project_id", _string(255), primary_key=True),
        sa.Column("trace_id", _string(255), primary_key=True),
        sa.Column("media_id", _string(255), primary_key=True),
        sa.Column("field", _string(32), primary_key=True),
        sa.Column("origin", _string(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _to_media("trace_media"),
    )
    op.create_table(
        "observation_media",
        sa.Column("project_id", _string(255), primary_key=True),
        sa.Column("trace_id", _string(255), primary_key=True),
        sa.Column("observation_id", _string(255), primary_key=True),
        sa.Column("media_id", _string(255), primary_key=True),
        sa.Column("field", _string(32), primary_key=True),
        sa.Column("origin", _string(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _to_media("observation_media"),
    )
    op.create_table(
        "dataset_item_media",
        sa.Column("project_id", _string(255), primary_key=True),
        sa.Column("dataset_item_id", _string(255), primary_key=True),
        sa.Column("field", _string(32), primary_key=True),
        sa.Column("media_id", _string(255), primary_key=True),
        sa.Column("dataset_id", _string(255), nullable=False),
        sa.Column("origin", _string(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _to_media("dataset_item_media"),
    )
    # Whether any link is left to a media file, when a trace's links are deleted.
    for table in TABLES:
        op.create_index(f"ix_{table}_media", table, ["project_id", "media_id"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_media", table_name=table)
        op.drop_table(table)
