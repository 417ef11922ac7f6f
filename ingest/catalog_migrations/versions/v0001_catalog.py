"""The catalog: source sets and documents (the same columns as the SQLite state file, schema 2).

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_sets",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("root", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "documents",
        sa.Column("doc_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("root", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False, server_default=""),
        sa.Column("labels_fp", sa.Text, nullable=False, server_default=""),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("format", sa.Text, nullable=False, server_default=""),
        sa.Column("groups", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("classification", sa.Text, nullable=False, server_default=""),
        sa.Column("language", sa.Text, nullable=False, server_default=""),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("chunk_ids", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("pending_ids", JSONB),
        sa.Column("stale_ids", JSONB),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("ingested_at", sa.Text, nullable=False, server_default=""),
        sa.Column("source_set", sa.Text, nullable=False, server_default=""),
        sa.Column("control", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint("status IN ('writing', 'done', 'deleting')", name="documents_status"),
    )
    op.create_index("documents_root", "documents", ["root"])
    op.create_index("documents_set_source", "documents", ["source_set", "source"])
    op.create_index(
        "documents_unfinished", "documents", ["doc_id"],
        postgresql_where=sa.text("status <> 'done' OR stale_ids IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("documents")
    op.drop_table("source_sets")
