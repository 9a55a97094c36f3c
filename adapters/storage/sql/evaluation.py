"""SQL storage of score configs, comments and annotation queues: tables and repositories."""

from __future__ import annotations

from fathom.adapters.storage.sql.repository import SqlRepository


class SqlScoreConfigRepository(SqlRepository):
    pass


class SqlCommentRepository(SqlRepository):
    pass


class SqlAnnotationQueueRepository(SqlRepository):
    pass
