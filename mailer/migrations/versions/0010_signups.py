"""Public sign-up with double opt-in: pending requests, their throttle, consent details.

`signups` keeps a request from the public form until its emailed link is confirmed
(then only its lists and times stay, for the weekly counts); `signup_lists` the lists
it asks for; `signup_throttle` the requests per client and per address (by hash) and
when a confirmation was last mailed. Subscriptions gain what a double opt-in records
beside source, time and IP: the form, the consent text shown, and when and from where
the link was confirmed (NULL for subscriptions made any other way). A list may name
an issue to mail as a welcome to those who join it that way (`lists.welcome_issue`).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("email_key", sa.String(254), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("language", sa.String(35), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("form", sa.String(80), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signups"),
        sa.CheckConstraint("status IN ('pending', 'confirmed')", name="ck_signups_status"),
        sqlite_autoincrement=True,  # ids are in confirmation links: never reused
    )
    op.create_index("ix_signups_email_key", "signups", ["email_key"])
    op.create_index("ix_signups_status_expires", "signups", ["status", "expires_at"])
    op.create_table(
        "signup_lists",
        sa.Column("signup_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("signup_id", "list_id", name="pk_signup_lists"),
        sa.ForeignKeyConstraint(
            ["signup_id"],
            ["signups.id"],
            name="fk_signup_lists_signup_id_signups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], name="fk_signup_lists_list_id_lists", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_signup_lists_list_id", "signup_lists", ["list_id"])
    op.create_table(
        "signup_throttle",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_mailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_signup_throttle"),
    )
    op.add_column("lists", sa.Column("welcome_issue", sa.String(100), nullable=True))
    op.add_column("subscriptions", sa.Column("consent_form", sa.String(80), nullable=True))
    op.add_column("subscriptions", sa.Column("consent_text", sa.Text(), nullable=True))
    op.add_column(
        "subscriptions",
        sa.Column("consent_confirmed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("subscriptions", sa.Column("consent_confirm_ip", sa.String(45), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), not a batch copy: see 0007.
    for column in ("consent_confirm_ip", "consent_confirmed_at", "consent_text", "consent_form"):
        op.drop_column("subscriptions", column)
    op.drop_column("lists", "welcome_issue")
    op.drop_table("signup_throttle")
    op.drop_index("ix_signup_lists_list_id", table_name="signup_lists")
    op.drop_table("signup_lists")
    op.drop_index("ix_signups_status_expires", table_name="signups")
    op.drop_index("ix_signups_email_key", table_name="signups")
    op.drop_table("signups")
