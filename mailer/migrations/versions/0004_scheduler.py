"""Scheduler: APScheduler job store and campaign waves.

`apscheduler_jobs` has exactly the columns APScheduler 3's SQLAlchemyJobStore
declares (it then finds the table and creates nothing itself), so the whole schema
comes from migrations. `campaign_waves` records each planned start of a campaign.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_apscheduler_jobs"),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])
    op.create_table(
        "campaign_waves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("status_reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(191), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_waves"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_campaign_waves_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'started', 'missed', 'failed', 'cancelled')",
            name="ck_campaign_waves_status",
        ),
    )
    op.create_index("ix_campaign_waves_campaign_id", "campaign_waves", ["campaign_id"])
    op.create_index("ix_campaign_waves_status_starts_at", "campaign_waves", ["status", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_campaign_waves_status_starts_at", table_name="campaign_waves")
    op.drop_index("ix_campaign_waves_campaign_id", table_name="campaign_waves")
    op.drop_table("campaign_waves")
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
