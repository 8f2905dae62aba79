"""The transcripts' first layout (PRAGMA user_version 0 and 1): debates, and their turns as JSON.

Revision ID: transcripts_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "transcripts_0001"
down_revision = None
branch_labels = ("transcripts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "debates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("motion", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rounds", sa.Integer, nullable=False),
        sa.Column("personas", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sqlite_autoincrement=True,  # ids are never reused: an exported "debate 7" stays that debate
    )
    op.create_table(
        "turns",
        sa.Column("debate_id", sa.Integer, sa.ForeignKey("debates.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )
