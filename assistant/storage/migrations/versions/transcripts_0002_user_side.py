"""A spar session's user side gets its own column (it rode in the personas JSON, which only
SQLite's json_extract could filter on): filled from the JSON of every saved debate.

Revision ID: transcripts_0002
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "transcripts_0002"
down_revision = "transcripts_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("debates") as debates:
        debates.add_column(sa.Column("user_side", sa.Text))
    connection = op.get_bind()
    table = sa.table("debates", sa.column("id", sa.Integer), sa.column("personas", sa.Text), sa.column("user_side", sa.Text))
    for debate_id, personas in connection.execute(sa.select(table.c.id, table.c.personas)).all():
        side = json.loads(personas).get("user_side")
        if side is not None:
            connection.execute(sa.update(table).where(table.c.id == debate_id).values(user_side=side))
