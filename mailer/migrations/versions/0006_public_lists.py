"""Lists: a `public` flag, so private lists stay off the public pages.

A public list is offered on the preferences page to anyone holding a subscriber's
link, and campaigns sent only to public lists appear in the archive. A private list
is shown there only to the people already on it (so they can leave it), and a
campaign that reaches a private list is never published.

Lists created from now on are private unless created public (`server_default`
false). Lists that exist when this migration runs become public: until now every
list was treated as public, so an installation that upgrades keeps showing what it
showed before; an operator makes a list private with `mailer lists edit SLUG
--private` (or on the Lists page).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "lists", sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # Existing lists keep today's behaviour (everything was public); new ones are private.
    lists = sa.table("lists", sa.column("public", sa.Boolean()))
    op.execute(lists.update().values(public=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+ has it), not a batch copy of the table: with
    # foreign keys on, dropping the old "lists" table would cascade to subscriptions.
    op.drop_column("lists", "public")
