"""Workers: who holds ledger rows, so a dead worker's rows come back at once.

One row per running worker, named as it names itself in `ledger.worker`: its host,
machine (boot id and pid namespace), process id and process start time, and on
PostgreSQL the key of the session advisory lock it holds while it lives and the
last time it stamped the row through that lock's connection (see
`mailer.delivery.owners`).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("machine", sa.String(100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started", sa.BigInteger(), nullable=False),
        sa.Column("lock_key", sa.BigInteger()),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
