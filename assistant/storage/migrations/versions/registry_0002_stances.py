"""Stances (PRAGMA user_version 1): each document's stance confirmed by a person, and the local
model's suggestion. Every existing document starts as "unknown".

Revision ID: registry_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as documents:
        documents.add_column(sa.Column("stance", sa.Text, nullable=False, server_default="unknown"))
        documents.add_column(sa.Column("suggested_stance", sa.Text))
