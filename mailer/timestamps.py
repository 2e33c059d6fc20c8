"""UTC timestamps stored the same way on SQLite and PostgreSQL.

SQLite has no time zone type and hands back naive datetimes; PostgreSQL's
`timestamp with time zone` hands back aware ones. Delivery compares lease and retry
times across both, so every timestamp is stored as naive UTC and read back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

# The one clock of the code base: defined in the subscriber store (a leaf package that
# cannot import mailer) and used from here by everything in mailer; the composition
# root hands it out as `Root.clock`.
from subscribers.clock import utcnow

__all__ = ["UTCDateTime", "utcnow"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that accepts aware datetimes and returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
