"""Delivery: campaigns and the per-recipient ledger.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("issue_path", sa.Text(), nullable=False),
        sa.Column("issue_slug", sa.String(64), nullable=False),
        sa.Column("issue_number", sa.Integer()),
        sa.Column("language", sa.String(16)),
        sa.Column("subject", sa.Text()),
        sa.Column("sender", sa.String(400), nullable=False),
        sa.Column("reply_to", sa.String(400)),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text()),
        sa.Column("auto_resume", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("pending_waves", sa.JSON(), nullable=False),
        sa.Column("frozen_subject", sa.Text()),
        sa.Column("frozen_preheader", sa.Text()),
        sa.Column("frozen_html", sa.Text()),
        sa.Column("frozen_text", sa.Text()),
        sa.Column("frozen_at", sa.DateTime()),
        sa.Column("scheduled_at", sa.DateTime()),
        sa.Column("misfire_grace_seconds", sa.Integer()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_state", "campaigns", ["state"])
    op.create_table(
        "ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(300)),
        sa.Column("country", sa.String(2)),
        sa.Column("partner_id", sa.Integer()),
        sa.Column("timezone", sa.String(64)),
        sa.Column("language", sa.String(16)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime()),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("worker", sa.String(100)),
        sa.Column("last_reply", sa.Text()),
        sa.Column("message_id", sa.String(255)),
        sa.Column("sent_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_ledger_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "campaign_id", "subscriber_id", name=op.f("uq_ledger_campaign_subscriber")
        ),
    )
    op.create_index("ix_ledger_due", "ledger", ["campaign_id", "status", "next_attempt_at"])
    op.create_index("ix_ledger_subscriber", "ledger", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_subscriber", table_name="ledger")
    op.drop_index("ix_ledger_due", table_name="ledger")
    op.drop_table("ledger")
    op.drop_index("ix_campaigns_state", table_name="campaigns")
    op.drop_table("campaigns")
