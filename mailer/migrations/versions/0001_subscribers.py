"""Subscriber store: partners, subscribers, lists, subscriptions, suppression.

Revision ID: 0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partners"),
        sa.UniqueConstraint("name", name="uq_partners_name"),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_key", sa.String(254), nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email_key", name="uq_subscribers_email_key"),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name="fk_subscribers_partner_id_partners",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('active', 'unsubscribed', 'bounced', 'complained')",
            name="ck_subscribers_status",
        ),
        # Unsubscribe links carry the id: SQLite must never hand an erased person's id
        # to the next subscriber (without AUTOINCREMENT it reuses the highest rowid).
        sqlite_autoincrement=True,
    )
    op.create_index("ix_subscribers_email_hash", "subscribers", ["email_hash"])
    op.create_index("ix_subscribers_partner_id", "subscribers", ["partner_id"])
    op.create_index("ix_subscribers_country_partner", "subscribers", ["country", "partner_id"])
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lists"),
        sa.UniqueConstraint("slug", name="uq_lists_slug"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("consent_source", sa.String(64), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_ip", sa.String(45), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribe_source", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("subscriber_id", "list_id", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_subscriptions_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], name="fk_subscriptions_list_id_lists", ondelete="CASCADE"
        ),
        sa.CheckConstraint("status IN ('active', 'unsubscribed')", name="ck_subscriptions_status"),
    )
    op.create_index("ix_subscriptions_list_status", "subscriptions", ["list_id", "status"])
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("email_hash", name="uq_suppressions_email_hash"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index("ix_subscriptions_list_status", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("lists")
    op.drop_index("ix_subscribers_country_partner", table_name="subscribers")
    op.drop_index("ix_subscribers_partner_id", table_name="subscribers")
    op.drop_index("ix_subscribers_email_hash", table_name="subscribers")
    op.drop_table("subscribers")
    op.drop_table("partners")
