"""Lists: `archived_at`, so removing a list that campaigns used keeps it for them.

Removing a list used to delete it with its subscriptions, so every campaign sent to it
lost the list its audience names: the public archive hid it and `/view/<id>` in every
sent email answered 404. A list that any campaign names is now archived instead: its
row stays (name, visibility) for the ledger, the archive and the web copies, its active
subscriptions end, and it is offered nowhere (audiences, subscriber forms, imports,
preferences). A list no campaign names is still deleted. NULL means not archived.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lists", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+ has it), not a batch copy of the table: with
    # foreign keys on, dropping the old "lists" table would cascade to subscriptions.
    op.drop_column("lists", "archived_at")
