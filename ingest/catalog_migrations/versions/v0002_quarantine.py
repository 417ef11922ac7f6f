"""The quarantine in the catalog (the same columns as the SQLite quarantine file).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("doc_id", sa.Text, nullable=False),
        sa.Column("source_set", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("counts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("quarantined_at", sa.Text, nullable=False),
        sa.Column("released_at", sa.Text),
        sa.Column("released_by", sa.Text),
        sa.Column("release_reason", sa.Text),
        sa.UniqueConstraint("doc_id", "sha256", name="quarantine_doc_sha256"),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
