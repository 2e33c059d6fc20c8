"""What the staff see of sign-ups: the pending requests and the counts per list and week.

Apart from the requests themselves (subscribers.signups) because they only read, for
the staff's pages, what the requests wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from subscribers.base import utcnow
from subscribers.models import MailingList
from subscribers.signups import Signup, SignupList, SignupStatus


def pending(session: Session, *, limit: int = 200) -> Sequence[Signup]:
    """Requests waiting for confirmation (expired ones too, until purged), newest first."""
    return session.scalars(
        select(Signup)
        .where(Signup.status == SignupStatus.PENDING.value)
        .order_by(Signup.created_at.desc(), Signup.id.desc())
        .limit(limit)
    ).all()


def count_pending(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Signup)
            .where(Signup.status == SignupStatus.PENDING.value)
        )
        or 0
    )


@dataclass(frozen=True)
class WeekCounts:
    """Sign-ups of one list in one week (Monday, UTC): requested and confirmed."""

    week: datetime
    requested: int
    confirmed: int


def weekly_counts(
    session: Session, *, weeks: int = 8, now: datetime | None = None
) -> dict[str, list[WeekCounts]]:
    """Per list slug, the last `weeks` weeks, newest first. Requests are counted by the
    week they were made (expired ones only until purged), confirmations by the week
    they were confirmed."""
    now = now or utcnow()
    this_monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    starts = [this_monday - timedelta(weeks=n) for n in range(weeks)]
    first = starts[-1]
    rows = session.execute(
        select(MailingList.slug, Signup.created_at, Signup.confirmed_at)
        .join(SignupList, SignupList.signup_id == Signup.id)
        .join(MailingList, MailingList.id == SignupList.list_id)
        .where(or_(Signup.created_at >= first, Signup.confirmed_at >= first))
    ).all()
    requested: dict[tuple[str, datetime], int] = defaultdict(int)
    confirmed: dict[tuple[str, datetime], int] = defaultdict(int)
    slugs: set[str] = set()

    def week_of(moment: datetime) -> datetime:
        return (moment - timedelta(days=moment.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )

    for slug, created_at, confirmed_at in rows:
        slugs.add(slug)
        if created_at >= first:
            requested[(slug, week_of(created_at))] += 1
        if confirmed_at is not None and confirmed_at >= first:
            confirmed[(slug, week_of(confirmed_at))] += 1
    return {
        slug: [WeekCounts(w, requested[(slug, w)], confirmed[(slug, w)]) for w in starts]
        for slug in sorted(slugs)
    }
