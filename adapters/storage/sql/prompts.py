"""SQL storage of prompts: tables and repository."""

from __future__ import annotations

from fathom.adapters.storage.sql.repository import SqlRepository


class SqlPromptRepository(SqlRepository):
    pass
