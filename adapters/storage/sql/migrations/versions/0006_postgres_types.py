"""PostgreSQL only: TEXT in byte order instead of VARCHAR(n), JSONB instead of JSON.

So that PostgreSQL behaves as SQLite does: no length limit on strings (SQLite never enforced
the declared ones, and Langfuse's own columns are TEXT), and the order and comparison of
strings by code point (SQLite's BINARY collation) whatever locale the cluster was created
with, so lists and cursors page the same on both. JSONB: see `adapters/storage/sql/types.py`.

0001-0005 now create these types on PostgreSQL themselves, so on a new database this finds
nothing to change; it converts the databases they created before. Nothing changes on SQLite.

Revision ID: 0006_postgres_types
Revises: 0005_datasets
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_postgres_types"
down_revision = "0005_datasets"
branch_labels = None
depends_on = None

# Every table of 0001-0005, frozen here: later tables are created with the right types.
TABLES = (
    "organizations",
    "projects",
    "users",
    "organization_memberships",
    "api_keys",
    "models",
    "prompts",
    "prompt_labels",
    "prompt_tags",
    "prompt_dependencies",
    "prompt_protected_labels",
    "score_configs",
    "comments",
    "annotation_queues",
    "annotation_queue_items",
    "annotation_queue_assignments",
    "datasets",
    "dataset_items",
    "dataset_runs",
    "dataset_run_items",
)


def _alter(to_jsonb: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    quote = bind.dialect.identifier_preparer.quote
    # One catalogue query for every table (information_schema or an inspector are far
    # slower); text already in byte order and JSONB need no change.
    rows = bind.execute(
        sa.text(
            "SELECT c.relname, a.attname, t.typname, a.attcollation = 'pg_catalog.\"C\"'::regcollation "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE n.nspname = current_schema() AND c.relname IN :tables "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        ).bindparams(sa.bindparam("tables", expanding=True)),
        {"tables": list(TABLES)},
    ).all()
    clauses: dict[str, list[str]] = {}
    for table, column, type_name, in_byte_order in rows:
        name = quote(column)
        if to_jsonb and (type_name == "varchar" or (type_name == "text" and not in_byte_order)):
            change = f'ALTER COLUMN {name} TYPE TEXT COLLATE "C"'
        elif to_jsonb and type_name == "json":
            change = f"ALTER COLUMN {name} TYPE JSONB USING {name}::jsonb"
        elif not to_jsonb and type_name == "jsonb":
            change = f"ALTER COLUMN {name} TYPE JSON USING {name}::json"
        else:
            continue
        clauses.setdefault(table, []).append(change)
    for table, changes in clauses.items():
        # One statement per table: the table is rewritten once, its indexes rebuilt once.
        op.execute(f"ALTER TABLE {quote(table)} " + ", ".join(changes))


def upgrade() -> None:
    _alter(to_jsonb=True)


def downgrade() -> None:
    # Strings stay TEXT: nothing stored since could be trusted to fit the old lengths.
    _alter(to_jsonb=False)
