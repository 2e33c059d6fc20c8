"""Destructive actions across the store and the campaigns: what each takes away.

Removing a list, a partner or a user, cancelling a campaign and erasing a person
cannot be undone, so the web app asks first and says what will be lost, and the CLI
names it when `--yes` is missing. The counts come from here, so both say the same.
Removing a list is done here too: whether it is deleted or archived depends on the
campaigns that used it, which the subscriber store does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.delivery import ledger
from mailer.delivery.campaigns import Campaign, CampaignState, get_campaign
from mailer.people import websessions
from mailer.people.accounts import User
from subscribers import mailing_lists, repository
from subscribers import partners as partner_store
from subscribers.audience import Audience, count_audience
from subscribers.errors import StoreInputError
from subscribers.models import MailingList, Subscriber, SubscriptionStatus


def plural(number: int, noun: str, many: str | None = None) -> str:
    """`1 campaign`, `2 campaigns`, `0 active subscriptions`."""
    return f"{number} {noun if number == 1 else (many or noun + 's')}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _audience(campaign: Campaign) -> Audience | None:
    try:
        return Audience.from_json(dict(campaign.audience))
    except (StoreInputError, TypeError, ValueError):
        return None


def campaigns_using_list(session: Session, mailing_list: MailingList) -> list[Campaign]:
    """Campaigns whose audience names the list (to send to or to leave out), in any state,
    and campaigns to "all lists" that started after the list existed (they reached its
    people, and whether they are public depends on it)."""
    used = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
        audience = _audience(campaign)
        if audience is None:
            continue
        if mailing_list.slug in audience.lists or mailing_list.slug in audience.exclude_lists:
            used.append(campaign)
        elif not audience.lists and campaign.started_at is not None:
            if _aware(campaign.started_at) >= _aware(mailing_list.created_at):
                used.append(campaign)
    return used


@dataclass(frozen=True)
class _Use:
    campaigns: int
    sent: int


def _list_use(session: Session, slug: str) -> _Use:
    campaigns = campaigns_using_list(session, mailing_lists.get_list(session, slug))
    return _Use(len(campaigns), sum(1 for c in campaigns if c.started_at is not None))


def list_removal(session: Session, slug: str) -> mailing_lists.ListRemoval:
    """What removing the list would take away, and whether it would be archived."""
    use = _list_use(session, slug)
    return mailing_lists.list_removal(session, slug, campaigns=use.campaigns, sent=use.sent)


def remove_list(session: Session, slug: str) -> mailing_lists.ListRemoval:
    """Archive the list if any campaign used it, else delete it (the CLI and the web app)."""
    use = _list_use(session, slug)
    return mailing_lists.remove_list(session, slug, campaigns=use.campaigns, sent=use.sent)


def list_consequences(removal: mailing_lists.ListRemoval) -> list[str]:
    if removal.archives:
        ends = "ends" if removal.active == 1 else "end"
        return [
            f"{plural(removal.active, 'active subscription')} {ends}: nobody gets anything"
            " more from this list.",
            f"It is archived, not deleted: {plural(removal.campaigns, 'campaign')} used it"
            f" ({removal.sent} sent). They keep their audience, the ledger, the public"
            " archive and the web copies; the list is no longer offered anywhere.",
        ]
    return [
        f"{plural(removal.active, 'active subscription')} and"
        f" {plural(removal.unsubscribed, 'unsubscribed record')} (with their consent"
        " records) are deleted.",
        "No campaign used this list, so it is deleted for good. Its subscribers stay.",
    ]


def partner_consequences(session: Session, partner_id: int) -> list[str]:
    partner = partner_store.get_partner(session, partner_id)
    contacts = session.scalar(
        select(func.count()).select_from(Subscriber).where(Subscriber.partner_id == partner.id)
    )
    named = 0
    for campaign in session.scalars(select(Campaign)):
        audience = _audience(campaign)
        if audience is not None and partner.name in audience.partners:
            named += 1
    lines = [
        f"{plural(int(contacts or 0), 'contact')} {'loses' if contacts == 1 else 'lose'} this"
        " partner; they stay, with their subscriptions.",
    ]
    if named:
        lines.append(
            f"{plural(named, 'campaign')} {'names' if named == 1 else 'name'} this partner in"
            " its audience; one not sent yet will no longer reach its contacts."
        )
    return lines


def cancel_consequences(session: Session, campaign_id: int) -> list[str]:
    campaign = get_campaign(session, campaign_id)
    tally = ledger.progress(session, campaign_id)
    lines = ["Cancelling is final: the campaign cannot be resumed or sent again."]
    if campaign.state in (CampaignState.DRAFT, CampaignState.SCHEDULED) and tally.total == 0:
        audience = _audience(campaign)
        people = count_audience(session, audience) if audience is not None else 0
        lines.append(f"Nobody gets it: its audience of {plural(people, 'person', 'people')}.")
    else:
        waiting = tally.pending + tally.retrying
        lines.append(
            f"{plural(waiting, 'message')} not sent yet will never be sent"
            f" ({tally.sent} already sent)."
        )
    if campaign.pending_waves:
        lines.append(
            f"{plural(len(campaign.pending_waves), 'local-time wave')} not started yet"
            f" ({', '.join(campaign.pending_waves)}) will not go out."
        )
    return lines


def erase_consequences(session: Session, subscriber_id: int) -> list[str]:
    subscriber = repository.get_subscriber(session, subscriber_id)
    subscriptions = repository.subscriptions_of(session, subscriber.id)
    active = sum(1 for s in subscriptions if s.status == SubscriptionStatus.ACTIVE)
    deliveries = ledger.count_of_person(session, subscriber.id, subscriber.email)
    rows = plural(deliveries, "delivery", "deliveries")
    return [
        f"{subscriber.email} ({subscriber.name or 'no name'}) is deleted with"
        f" {plural(len(subscriptions), 'subscription')} ({active} active) and their consent"
        " records.",
        f"Their address and name are blanked in {rows} of the ledger; messages not sent"
        " yet to them fail.",
        "Only a hash stays on the suppression list, so they are never mailed again."
        " This cannot be undone.",
    ]


def user_consequences(session: Session, user: User) -> list[str]:
    sessions = websessions.count(session, user.id)
    return [
        f"{user.email} ({user.role}) can no longer sign in.",
        f"{plural(sessions, 'open session')} {'ends' if sessions == 1 else 'end'} now.",
    ]
