"""The media library: one row per uploaded photo (`mailer.authoring.media_library`).

The file itself is in the media folder under `hash` (the first 20 hex digits of the
SHA-256 of its stored bytes) with the ending of `content_type`; the row keeps what the
library page shows (original file name, size in pixels and bytes, who uploaded it and
when). The uploader's account may be removed later: the row stays, without them.

Revision ID: 0014
Revises: 0012 (the lead rechains the numbers at merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("original_filename", sa.String(255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
        sa.UniqueConstraint("hash", name="uq_media_hash"),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name="fk_media_uploaded_by_users", ondelete="SET NULL"
        ),
    )


def downgrade() -> None:
    op.drop_table("media")
