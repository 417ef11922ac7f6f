"""Answer receipts and staff feedback in the catalog (the same columns as the SQLite feedback file).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("answer_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("question", sa.Text),
        sa.Column("answer_text", sa.Text),
        sa.Column("mode", sa.Text),
        sa.Column("abstained", sa.Boolean, nullable=False),
        sa.Column("documents", JSONB, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("feedback_id", sa.Text, primary_key=True),
        sa.Column("answer_id", sa.Text, sa.ForeignKey("answers.answer_id"), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("vote", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("vote IN ('up', 'down')", name="feedback_vote"),
    )
    op.create_index("feedback_created", "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("answers")
