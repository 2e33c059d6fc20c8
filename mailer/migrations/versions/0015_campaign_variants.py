"""Campaign variants: every language variant of a campaign's issue, frozen.

`campaign_variants` holds one row per (campaign, language): the variant file it was
rendered from and its frozen subject, preheader, HTML and text. The campaign's own
`frozen_*` columns keep the default variant, so campaigns frozen before this
revision (which have no rows here) send as they did. `ix_ledger_language` counts a
campaign's rows per language for the report from the index alone.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_variants",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("preheader", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_campaign_variants_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "language", name="pk_campaign_variants"),
    )
    op.create_index("ix_ledger_language", "ledger", ["campaign_id", "language", "status"])


def downgrade() -> None:
    op.drop_index("ix_ledger_language", table_name="ledger")
    op.drop_table("campaign_variants")
