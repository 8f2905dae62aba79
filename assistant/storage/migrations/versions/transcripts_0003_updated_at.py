"""When each debate was last saved: a debate still marked running after the longest a generation
may run lost its process (a replica killed mid-debate), and is shown as stopped.

Revision ID: transcripts_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "transcripts_0003"
down_revision = "transcripts_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("debates") as debates:
        debates.add_column(sa.Column("updated_at", sa.Text))
    debates_table = sa.table("debates", sa.column("created_at", sa.Text), sa.column("updated_at", sa.Text))
    op.execute(sa.update(debates_table).values(updated_at=debates_table.c.created_at))
