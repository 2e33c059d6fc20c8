"""Subscriber store: partners, subscribers, lists, subscriptions, suppression.

Revision ID: 0001
Revises: None
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue that owns these tables


def downgrade() -> None:
    pass
