"""The one clock of the code base: a leaf module (no SQLAlchemy), so that anything may
take the time without importing a database layer. The subscriber store uses it, and
`mailer` takes it from here (`mailer.timestamps`, `Root.clock`)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)
