"""Recording outcomes on PostgreSQL without holding up the send loop, durably.

Every commit waits for PostgreSQL to flush its WAL to disk (synchronous commit, the
default: a sent message's record survives even a database crash), about half a
millisecond here, plus the round trip. The worker need not wait for it: the only
promise is that a connection's outcome is durable before that connection's next final
dot. So the recorder sends the group's one statement and returns at once; the
worker keeps sending on its other connections and watches the recorder's socket in
the same poll(2) as the SMTP sockets. One statement, outside any explicit
transaction, is its own transaction: when its reply arrives it is committed.

The statement is prepared once per connection and takes one array per column
(`unnest`), so the same plan serves a group of any size.
"""

from __future__ import annotations

import select
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import pq
from psycopg.errors import error_from_result
from sqlalchemy import Connection

from mailer.delivery.ledger.outcomes import Row

_UPDATE = (
    "UPDATE ledger SET status = v.status, last_reply = v.reply, message_id = v.message_id,"
    " sent_at = v.sent_at, next_attempt_at = v.retry_at, lease_until = NULL"
    " FROM unnest($1, $2, $3, $4, $5, $6) AS v (id, status, reply, message_id, sent_at, retry_at)"
    " WHERE ledger.id = v.id"
)
_TYPES = "bigint[], text[], text[], text[], timestamp[], timestamp[]"


def _array(values: Iterable[Any]) -> bytes:
    """A PostgreSQL array literal (text format): every element quoted, NULL for None."""
    items = (
        "NULL"
        if value is None
        else '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for value in values
    )
    return ("{" + ",".join(items) + "}").encode()


def parameters(rows: Sequence[Row]) -> list[bytes | None]:
    """The six column arrays of `rows` (id, status, reply, message_id, sent_at, retry_at)."""
    return [_array(column) for column in zip(*rows, strict=True)]


class PostgresRecorder:
    """Outcome groups sent on one connection (kept open for the purpose), one in flight
    at a time."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.name = f"ledger_outcomes_{uuid.uuid4().hex[:12]}"
        connection.exec_driver_sql(f"PREPARE {self.name} ({_TYPES}) AS {_UPDATE}")
        connection.commit()
        driver = connection.connection.driver_connection
        assert driver is not None
        self.pgconn: pq.abc.PGconn = driver.pgconn
        self.in_flight = False

    def send(self, rows: Sequence[Row]) -> None:
        """Send one group's statement; `pending` says when it is committed."""
        assert not self.in_flight
        self.pgconn.send_query_prepared(self.name.encode(), parameters(rows))
        self.in_flight = True
        while self.pgconn.flush():  # rarely: the socket's buffer is full
            select.select([], [self.pgconn.socket], [], 1.0)

    def pending(self) -> int | None:
        """None once the group sent last is committed; else the socket to wait for.
        Raises the database's error if it was not written."""
        if not self.in_flight:
            return None
        self.pgconn.consume_input()
        if self.pgconn.is_busy():
            return self.pgconn.socket
        self.in_flight = False
        failure = None
        while (result := self.pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK and failure is None:
                failure = error_from_result(result, encoding="utf-8")
        if failure is not None:
            raise failure
        return None

    def wait(self) -> None:
        """Block until the group in flight (if any) is committed."""
        while (fd := self.pending()) is not None:
            select.select([fd], [], [], 1.0)

    def close(self) -> None:
        """Wait for the group in flight and drop the statement, so the pooled connection
        goes back as it came."""
        self.wait()
        self.connection.exec_driver_sql(f"DEALLOCATE {self.name}")
        self.connection.commit()
