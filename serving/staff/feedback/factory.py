"""The feedback factory: PostgreSQL tables next to the catalog when ``catalog.url`` is PostgreSQL,
else ``feedback.path`` (SQLite). In a module of its own so that the two adapters never import each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from serving.staff.feedback.store import FeedbackStore

if TYPE_CHECKING:
    from vraagbaak_core.ports import FeedbackLog
    from vraagbaak_core.settings import Settings


def build_feedback(settings: Settings) -> FeedbackLog:
    """Feedback next to the catalog: PostgreSQL when ``catalog.url`` is, else ``feedback.path`` (SQLite)."""
    url = settings.catalog.url.get_secret_value().strip() if settings.catalog.url is not None else ""
    if url.startswith(("postgresql://", "postgres://")):
        from ingest.catalog import catalog_password
        from serving.staff.feedback.store_pg import PostgresFeedback

        return PostgresFeedback(url, password=catalog_password(settings),
                                connect_timeout_s=settings.catalog.connect_timeout_s,
                                timeouts=settings.catalog.timeouts())
    return FeedbackStore(settings.feedback_path())
