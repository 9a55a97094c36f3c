"""Media records of multi-modal uploads, unique per project by id and by content hash.

On PostgreSQL strings are TEXT in byte order, as 0006_postgres_types made every older one.

Revision ID: 0007_media
Revises: 0006_postgres_types
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_media"
down_revision = "0006_postgres_types"
branch_labels = None
depends_on = None


def _string(length: int | None = None) -> sa.types.TypeEngine:
    plain = sa.String(length) if length else sa.Text()
    return plain.with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column(
            "project_id",
            _string(255),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("sha256_hash", _string(64), nullable=False),
        sa.Column("content_type", _string(255), nullable=False),
        sa.Column("content_length", sa.BigInteger, nullable=False),
        sa.Column("blob_key", _string(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upload_http_status", sa.Integer, nullable=True),
        sa.Column("upload_http_error", _string(), nullable=True),
        sa.Column("upload_time_ms", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "sha256_hash", name="uq_media_project_id_sha256_hash"),
    )


def downgrade() -> None:
    op.drop_table("media")
