"""SQL storage of datasets: tables and repository."""

from __future__ import annotations

from fathom.adapters.storage.sql.repository import SqlRepository


class SqlDatasetRepository(SqlRepository):
    pass
