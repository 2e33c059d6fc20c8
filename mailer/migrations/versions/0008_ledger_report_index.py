"""Ledger: a covering index for the progress report.

The campaign page (and its status poll) counts a campaign's rows by country,
partner, time zone and status. Without this index each refresh read every ledger
row of the campaign (450 ms at 100,000 on SQLite); with it the count is read from
the index alone, in index order.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_report",
        "ledger",
        ["campaign_id", "country", "partner_id", "timezone", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_report", table_name="ledger")
