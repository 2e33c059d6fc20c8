"""Audience counts kept by the database; an index for a subscriber's deliveries.

The campaign form shows how many people an audience reaches, per country and
partner. Counting them from `subscribers`, `subscriptions` and `suppressions` on
every request read all 100,000 subscribers (100-180 ms). Now the database keeps
the counts itself, so every write path (the web app, the CLI, CSV import, privacy
erase, bounces, list and partner removal, and any other tool) keeps them right:

- `audience_keys`: one row per person who can be mailed at all (status active,
  not suppressed, at least one active subscription): their country ('' for none),
  partner id (0 for none) and the ids of the lists they are actively on, as the
  text ",3,7," (sorted; the text is only ever matched as a whole or by ",id,").
- `audience_counts`: how many people share each (country, partner, lists) group.
  There are as many groups as combinations in use (hundreds), not people, so an
  audience's counts are a sum over a few hundred rows: lists it sends to appear
  in `lists`, excluded lists do not.

Triggers refresh the rows of every person a write touches: a change of a
subscriber's status, country, partner or address hash, of a subscription (added,
status changed, removed, also by cascade when a list or a person is deleted), or
of a suppression. A refresh takes the person's old group out and puts the new one
in, recomputed from the tables, so it is right whatever the write was.

SQLite runs one writer at a time, so its triggers (one per row) refresh at once and
add to and take from one row per group.

PostgreSQL's triggers run once per statement (transition tables) and only note
who changed (`audience_dirty`, and the transaction in `audience_pending`, whose
deferred constraint trigger runs `audience_flush` once at commit): a refresh
costs a few statements, and a statement per row (an ORM flush of 100,000 rows)
must not pay it per row. `audience_flush()` refreshes everyone noted so far, in
one set-based pass; the count readers call it first, so a transaction sees its
own changes counted. A refresh locks the people it refreshes, in id order, so
two transactions changing the same person take turns. The counts are written as
signed rows (+n, -n) summed by the readers, never updated in place, so writers
never wait for each other on a shared counter (a long import would otherwise
hold every group it touched until it commits); each refresh folds the groups
that have several rows into one, skipping rows another transaction is folding
(SKIP LOCKED).

`ix_ledger_email` (on lower(email)): a subscriber's page lists their deliveries
by address (`ledger.deliveries_to`), which read the whole ledger without it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# A person's group, if they can be mailed: the same conditions as the audience query.
_SQLITE_KEY = """
SELECT s.id, coalesce(s.country, ''), coalesce(s.partner_id, 0),
       ',' || (SELECT group_concat(o.list_id, ',') FROM (
           SELECT x.list_id FROM subscriptions x
            WHERE x.subscriber_id = s.id AND x.status = 'active'
            ORDER BY x.list_id) AS o) || ','
  FROM subscribers s
 WHERE s.status = 'active'
   AND EXISTS (SELECT 1 FROM subscriptions x
                WHERE x.subscriber_id = s.id AND x.status = 'active')
   AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)
"""

# Built from this file's constants only, never from input (hence the noqa: S608).


def _one(person: str) -> str:
    """The statements that move one person (`person`: an SQL expression of their id)
    from their counted group, if any, to their current one, if any."""
    group = f"SELECT country, partner_id, lists FROM audience_keys WHERE subscriber_id = {person}"  # noqa: S608
    return f"""
UPDATE audience_counts SET people = people - 1 WHERE (country, partner_id, lists) IN ({group});
DELETE FROM audience_counts WHERE people = 0 AND (country, partner_id, lists) IN ({group});
DELETE FROM audience_keys WHERE subscriber_id = {person};
INSERT INTO audience_keys (subscriber_id, country, partner_id, lists)
{_SQLITE_KEY} AND s.id = {person};
INSERT INTO audience_counts (country, partner_id, lists, people)
SELECT country, partner_id, lists, 1 FROM audience_keys WHERE subscriber_id = {person}
ON CONFLICT (country, partner_id, lists) DO UPDATE SET people = people + 1;
"""  # noqa: S608


def _many(ids: str) -> str:
    """`_one` for the people `ids` (an SQL subquery of ids: those with one address hash)."""
    same_group = (
        "k.country = audience_counts.country AND k.partner_id = audience_counts.partner_id"
        " AND k.lists = audience_counts.lists"
    )
    groups = f"SELECT country, partner_id, lists FROM audience_keys WHERE subscriber_id IN {ids}"  # noqa: S608
    moved = f"SELECT count(*) FROM audience_keys k WHERE k.subscriber_id IN {ids} AND {same_group}"  # noqa: S608
    return f"""
UPDATE audience_counts SET people = people - ({moved})
 WHERE (country, partner_id, lists) IN ({groups});
DELETE FROM audience_counts WHERE people = 0 AND (country, partner_id, lists) IN ({groups});
DELETE FROM audience_keys WHERE subscriber_id IN {ids};
INSERT INTO audience_keys (subscriber_id, country, partner_id, lists)
{_SQLITE_KEY} AND s.id IN {ids};
INSERT INTO audience_counts (country, partner_id, lists, people)
SELECT country, partner_id, lists, count(*) FROM audience_keys
 WHERE subscriber_id IN {ids} GROUP BY country, partner_id, lists
ON CONFLICT (country, partner_id, lists) DO UPDATE SET people = people + excluded.people;
"""  # noqa: S608


_SUBSCRIBER_CHANGED = (
    "OLD.status IS NOT NEW.status OR OLD.country IS NOT NEW.country"
    " OR OLD.partner_id IS NOT NEW.partner_id OR OLD.email_hash IS NOT NEW.email_hash"
)
_SUBSCRIPTION_CHANGED = "OLD.list_id IS NOT NEW.list_id OR OLD.status IS NOT NEW.status"

# SQLite triggers (one run per row): name -> (when, what they run).
_SQLITE_TRIGGERS = {
    "audience_subscribers_update": (
        "AFTER UPDATE OF status, country, partner_id, email_hash ON subscribers"
        f" WHEN OLD.id = NEW.id AND ({_SUBSCRIBER_CHANGED})",
        _one("NEW.id"),
    ),
    "audience_subscribers_renumber": (
        "AFTER UPDATE OF id ON subscribers WHEN OLD.id IS NOT NEW.id",
        _one("OLD.id") + _one("NEW.id"),
    ),
    "audience_subscribers_delete": ("AFTER DELETE ON subscribers", _one("OLD.id")),
    "audience_subscriptions_insert": (
        "AFTER INSERT ON subscriptions WHEN NEW.status = 'active'",
        _one("NEW.subscriber_id"),
    ),
    "audience_subscriptions_update": (
        "AFTER UPDATE OF list_id, status ON subscriptions"
        f" WHEN OLD.subscriber_id = NEW.subscriber_id AND ({_SUBSCRIPTION_CHANGED})",
        _one("NEW.subscriber_id"),
    ),
    "audience_subscriptions_move": (
        "AFTER UPDATE OF subscriber_id ON subscriptions"
        " WHEN OLD.subscriber_id IS NOT NEW.subscriber_id",
        _one("OLD.subscriber_id") + _one("NEW.subscriber_id"),
    ),
    "audience_subscriptions_delete": (
        "AFTER DELETE ON subscriptions WHEN OLD.status = 'active'",
        _one("OLD.subscriber_id"),
    ),
    "audience_suppressions_insert": (
        "AFTER INSERT ON suppressions",
        _many("(SELECT id FROM subscribers WHERE email_hash = NEW.email_hash)"),
    ),
    "audience_suppressions_update": (
        "AFTER UPDATE OF email_hash ON suppressions",
        _many("(SELECT id FROM subscribers WHERE email_hash IN (OLD.email_hash, NEW.email_hash))"),
    ),
    "audience_suppressions_delete": (
        "AFTER DELETE ON suppressions",
        _many("(SELECT id FROM subscribers WHERE email_hash = OLD.email_hash)"),
    ),
}


_POSTGRES_FUNCTIONS = """
CREATE FUNCTION audience_refresh(changed integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ids integer[] := ARRAY(
        SELECT DISTINCT i FROM unnest(changed) AS i WHERE i IS NOT NULL ORDER BY i);
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    -- One change of a person at a time: a second transaction waits here, and its
    -- next statements see what the first one committed.
    PERFORM 1 FROM subscribers s JOIN unnest(ids) AS i(id) ON s.id = i.id
      ORDER BY s.id FOR NO KEY UPDATE OF s;
    WITH gone AS (
        DELETE FROM audience_keys k USING unnest(ids) AS i(id)
         WHERE k.subscriber_id = i.id
        RETURNING k.country, k.partner_id, k.lists)
    INSERT INTO audience_counts (country, partner_id, lists, people)
    SELECT country, partner_id, lists, -count(*) FROM gone
     GROUP BY country, partner_id, lists;
    INSERT INTO audience_keys (subscriber_id, country, partner_id, lists)
    SELECT s.id, coalesce(s.country, ''), coalesce(s.partner_id, 0),
           ',' || string_agg(x.list_id::text, ',' ORDER BY x.list_id) || ','
      FROM unnest(ids) AS i(id)
      JOIN subscribers s ON s.id = i.id
      JOIN subscriptions x ON x.subscriber_id = s.id AND x.status = 'active'
     WHERE s.status = 'active'
       AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)
     GROUP BY s.id;
    INSERT INTO audience_counts (country, partner_id, lists, people)
    SELECT k.country, k.partner_id, k.lists, count(*)
      FROM audience_keys k JOIN unnest(ids) AS i(id) ON k.subscriber_id = i.id
     GROUP BY k.country, k.partner_id, k.lists;
    -- Fold every group that has several rows into one (rows that another
    -- transaction is folding are skipped, never waited for).
    WITH folded AS (
        DELETE FROM audience_counts WHERE id IN (
            SELECT c.id FROM audience_counts c
             WHERE (c.country, c.partner_id, c.lists) IN (
                 SELECT country, partner_id, lists FROM audience_counts
                  GROUP BY country, partner_id, lists HAVING count(*) > 1)
               FOR UPDATE SKIP LOCKED)
        RETURNING country, partner_id, lists, people)
    INSERT INTO audience_counts (country, partner_id, lists, people)
    SELECT country, partner_id, lists, sum(people) FROM folded
     GROUP BY country, partner_id, lists HAVING sum(people) <> 0;
END $$;

CREATE FUNCTION audience_flush() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
BEGIN
    -- Nothing written in this transaction (no transaction id yet): nothing to do.
    IF txid_current_if_assigned() IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM audience_pending WHERE transaction_id = txid_current();
    IF NOT FOUND THEN
        RETURN;
    END IF;
    WITH gone AS (DELETE FROM audience_dirty RETURNING subscriber_id)
    SELECT array_agg(subscriber_id) INTO ids FROM gone;
    PERFORM audience_refresh(coalesce(ids, '{}'));
END $$;

CREATE FUNCTION audience_pending_flush() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM audience_flush();
    RETURN NULL;
END $$;

CREATE FUNCTION audience_subscribers_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO audience_dirty (subscriber_id)
        SELECT id FROM (
            SELECT id, status, country, partner_id, email_hash FROM new_rows
            EXCEPT SELECT id, status, country, partner_id, email_hash FROM old_rows
        ) AS added
        UNION
        SELECT id FROM (
            SELECT id, status, country, partner_id, email_hash FROM old_rows
            EXCEPT SELECT id, status, country, partner_id, email_hash FROM new_rows
        ) AS removed;
    ELSE
        INSERT INTO audience_dirty (subscriber_id) SELECT id FROM old_rows;
    END IF;
    IF FOUND THEN
        INSERT INTO audience_pending VALUES (txid_current()) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION audience_subscriptions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audience_dirty (subscriber_id)
        SELECT subscriber_id FROM new_rows WHERE status = 'active';
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audience_dirty (subscriber_id)
        SELECT subscriber_id FROM (
            SELECT subscriber_id, list_id, status FROM new_rows
            EXCEPT SELECT subscriber_id, list_id, status FROM old_rows
        ) AS added
        UNION
        SELECT subscriber_id FROM (
            SELECT subscriber_id, list_id, status FROM old_rows
            EXCEPT SELECT subscriber_id, list_id, status FROM new_rows
        ) AS removed;
    ELSE
        INSERT INTO audience_dirty (subscriber_id)
        SELECT subscriber_id FROM old_rows WHERE status = 'active';
    END IF;
    IF FOUND THEN
        INSERT INTO audience_pending VALUES (txid_current()) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION audience_suppressions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audience_dirty (subscriber_id)
        SELECT s.id FROM subscribers s JOIN new_rows n ON n.email_hash = s.email_hash;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audience_dirty (subscriber_id)
        SELECT s.id FROM subscribers s
         WHERE s.email_hash IN (SELECT email_hash FROM new_rows
                                UNION SELECT email_hash FROM old_rows);
    ELSE
        INSERT INTO audience_dirty (subscriber_id)
        SELECT s.id FROM subscribers s JOIN old_rows o ON o.email_hash = s.email_hash;
    END IF;
    IF FOUND THEN
        INSERT INTO audience_pending VALUES (txid_current()) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER audience_flush AFTER INSERT ON audience_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audience_pending_flush();
"""

# table, event, transition tables (statement triggers need one trigger per event)
_POSTGRES_TRIGGERS = [
    ("subscribers", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("subscribers", "DELETE", "OLD TABLE AS old_rows"),
    ("subscriptions", "INSERT", "NEW TABLE AS new_rows"),
    ("subscriptions", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("subscriptions", "DELETE", "OLD TABLE AS old_rows"),
    ("suppressions", "INSERT", "NEW TABLE AS new_rows"),
    ("suppressions", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("suppressions", "DELETE", "OLD TABLE AS old_rows"),
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audience_keys",
        sa.Column("subscriber_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("lists", sa.Text, nullable=False),
    )
    op.create_table(
        "audience_counts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("lists", sa.Text, nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_audience_counts_group",
        "audience_counts",
        ["country", "partner_id", "lists"],
        unique=not postgres,  # PostgreSQL keeps signed rows, folded (see above)
    )
    op.create_index("ix_ledger_email", "ledger", [sa.text("lower(email)")])
    if postgres:
        op.create_table("audience_dirty", sa.Column("subscriber_id", sa.Integer, nullable=False))
        op.create_table(
            "audience_pending",
            sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        )
        op.execute(
            """
            INSERT INTO audience_keys (subscriber_id, country, partner_id, lists)
            SELECT s.id, coalesce(s.country, ''), coalesce(s.partner_id, 0),
                   ',' || string_agg(x.list_id::text, ',' ORDER BY x.list_id) || ','
              FROM subscribers s
              JOIN subscriptions x ON x.subscriber_id = s.id AND x.status = 'active'
             WHERE s.status = 'active'
               AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)
             GROUP BY s.id
            """
        )
    else:
        op.execute(
            f"INSERT INTO audience_keys (subscriber_id, country, partner_id, lists) {_SQLITE_KEY}"
        )
    op.execute(
        "INSERT INTO audience_counts (country, partner_id, lists, people)"
        " SELECT country, partner_id, lists, count(*) FROM audience_keys"
        " GROUP BY country, partner_id, lists"
    )
    if postgres:
        op.execute(_POSTGRES_FUNCTIONS)
        for table, event, transitions in _POSTGRES_TRIGGERS:
            op.execute(
                f"CREATE TRIGGER audience_{table}_{event.lower()} AFTER {event} ON {table}"
                f" REFERENCING {transitions} FOR EACH STATEMENT"
                f" EXECUTE FUNCTION audience_{table}_changed()"
            )
    else:
        for name, (when, statements) in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {statements} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, event, _ in _POSTGRES_TRIGGERS:
            op.execute(f"DROP TRIGGER audience_{table}_{event.lower()} ON {table}")
        op.execute("DROP TRIGGER audience_flush ON audience_pending")
        for table in ("subscribers", "subscriptions", "suppressions"):
            op.execute(f"DROP FUNCTION audience_{table}_changed()")
        op.execute("DROP FUNCTION audience_pending_flush()")
        op.execute("DROP FUNCTION audience_flush()")
        op.execute("DROP FUNCTION audience_refresh(integer[])")
        op.drop_table("audience_pending")
        op.drop_table("audience_dirty")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_ledger_email", table_name="ledger")
    op.drop_table("audience_counts")
    op.drop_table("audience_keys")
