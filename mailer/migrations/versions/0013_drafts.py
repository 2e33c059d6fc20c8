"""Drafts composed in the browser, every save a revision; campaigns made from one.

`drafts` holds the current document (the same fields as a content file, as JSON)
with a version number that every save increments, so a second editor's save made
from an older version is refused instead of overwriting the first. `draft_revisions`
keeps each save whole (numbered 1..n per draft), with its author and kind (save,
autosave, restore, import). `campaigns.draft_revision_id` names the revision a
campaign was made from and froze.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_drafts_created_by_users"),
            ondelete="SET NULL",
        ),
    )
    op.create_table(
        "draft_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("restored_from", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draft_revisions")),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["drafts.id"],
            name=op.f("fk_draft_revisions_draft_id_drafts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_draft_revisions_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("draft_id", "number", name="uq_draft_revisions_number"),
    )
    _add_reference("drafts", "head_revision_id", "SET NULL")
    _add_reference("campaigns", "draft_revision_id", "RESTRICT")


def _add_reference(table: str, column: str, on_delete: str) -> None:
    """A nullable column referring to a revision. SQLite takes the reference in ADD
    COLUMN (a batch copy of `campaigns` would cascade its deletion to the ledger);
    PostgreSQL adds it as a constraint (the two tables refer to each other)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} INTEGER"
            f" REFERENCES draft_revisions (id) ON DELETE {on_delete}"
        )
        return
    op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.create_foreign_key(
        f"fk_{table}_{column}_draft_revisions",
        table,
        "draft_revisions",
        [column],
        ["id"],
        ondelete=on_delete,
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), never a batch copy: see _add_reference.
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            "fk_campaigns_draft_revision_id_draft_revisions", "campaigns", type_="foreignkey"
        )
        op.drop_constraint(
            "fk_drafts_head_revision_id_draft_revisions", "drafts", type_="foreignkey"
        )
    op.drop_column("campaigns", "draft_revision_id")
    op.drop_column("drafts", "head_revision_id")
    op.drop_table("draft_revisions")
    op.drop_table("drafts")
