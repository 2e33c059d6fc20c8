"""Campaign life cycle, freezing, and set-based enqueueing into the ledger (both databases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns, ledger, lifecycle
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from mailer.delivery.lifecycle import IllegalTransition
from mailer.errors import UserInputError
from subscribers import mailing_lists, repository, suppression
from subscribers import partners as partner_store
from subscribers.audience import Audience


@dataclass(frozen=True)
class FakeIssue:
    slug: str = "2022-15"
    number: int = 15
    language: str = "en"


@dataclass(frozen=True)
class Rendered:
    subject: str = "Issue 15: Fifth anniversary"
    preheader: str = "Views of experts"
    html: str = "<p>Hello</p>"
    text: str = "Hello"
    language: str = "en"


def populate(session: Session) -> None:
    mailing_lists.add_list(session, "newsletter")
    mailing_lists.add_list(session, "staff")
    partner_store.add_partner(session, "MONRE", "VN")
    people = [
        ("zhang@example.cn", "张玉军", "CN", None),
        ("le@example.vn", "Lê Ngọc Tuấn", "VN", "MONRE"),
        ("somchai@example.th", "สมชาย ใจดี", "TH", None),
        ("thaw@example.mm", "သော်သော်ဟန်", "MM", None),
        ("srey@example.kh", "ស្រី សុនលាង", "KH", None),
        ("lonkham@example.la", "ລອນຄຳ ອັດສະນາວົງ", "LA", None),
    ]
    for email, name, country, partner in people:
        repository.add_subscriber(
            session, email, name=name, country=country, partner=partner, lists=["newsletter"]
        )
    repository.add_subscriber(session, "boss@example.org", name="Boss", lists=["staff"])


def new_campaign(session: Session, **extra: object) -> campaigns.Campaign:
    values: dict[str, object] = {
        "name": "Issue 15",
        "issue_path": "examples/issues/2022-15.yaml",
        "issue": FakeIssue(),
        "sender": "LMEC <news@lmec.example.org>",
        "audience": Audience(lists=("newsletter",)),
    }
    values.update(extra)
    return campaigns.create_campaign(session, **values)  # type: ignore[arg-type]


def test_life_cycle_enforces_transitions(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        campaign = new_campaign(session)
        cid = campaign.id
        assert campaign.state == CampaignState.DRAFT
        assert campaign.audience == {
            "lists": ["newsletter"],
            "countries": [],
            "partners": [],
            "exclude_lists": [],
        }
    with sessions.begin() as session:
        with pytest.raises(IllegalTransition, match="draft; it cannot become paused"):
            lifecycle.pause(session, cid)
        when = datetime(2030, 12, 1, 1, 0, tzinfo=UTC)
        lifecycle.schedule(session, cid, when, misfire_grace_seconds=60)
        lifecycle.miss(session, cid, "server was down at 01:00")
        lifecycle.schedule(session, cid, when)
        lifecycle.unschedule(session, cid)
        lifecycle.cancel(session, cid)
    with sessions.begin() as session:
        campaign = campaigns.get_campaign(session, cid)
        assert campaign.state == CampaignState.CANCELLED
        assert campaign.finished_at is not None and campaign.finished_at.tzinfo is not None
        with pytest.raises(IllegalTransition):
            lifecycle.resume(session, cid)
        with pytest.raises(campaigns.CampaignNotFound):
            campaigns.get_campaign(session, cid + 1000)


def test_header_values_with_line_breaks_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(UserInputError, match="subject: line breaks"):
            new_campaign(session, subject="Hello\r\nBcc: x@evil.example")
        with pytest.raises(UserInputError, match="sender"):
            new_campaign(session, sender="LMEC <news@lmec.example.org>\nBcc: x@evil.example")
        with pytest.raises(UserInputError, match="sender: 'nobody' is not an email address"):
            new_campaign(session, sender="nobody")


def test_start_sending_freezes_and_enqueues_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
        cid = new_campaign(session, subject=None).id
        suppression.suppress(session, "srey@example.kh", "test")
    with sessions.begin() as session:
        with pytest.raises(campaigns.CampaignError, match="no frozen content"):
            lifecycle.start_sending(session, cid)
    with sessions.begin() as session:
        campaigns.freeze(session, cid, Rendered())
    assert lifecycle.start_sending(sessions, cid) == 5  # 6 on the list, one suppressed
    assert lifecycle.start_sending(sessions, cid) == 0  # idempotent
    with sessions.begin() as session:
        campaign = campaigns.get_campaign(session, cid)
        assert campaign.state == CampaignState.SENDING
        assert campaign.started_at is not None
        assert campaign.frozen_subject == "Issue 15: Fifth anniversary"
        # A second freeze keeps what was frozen first.
        campaigns.freeze(session, cid, Rendered(subject="changed", html="<p>changed</p>"))
        assert campaign.frozen_html == "<p>Hello</p>"
        rows = session.scalars(select(LedgerRow).order_by(LedgerRow.subscriber_id)).all()
        assert {r.email for r in rows} == {
            "zhang@example.cn",
            "le@example.vn",
            "somchai@example.th",
            "thaw@example.mm",
            "lonkham@example.la",
        }
        le = next(r for r in rows if r.country == "VN")
        assert le.name == "Lê Ngọc Tuấn" and le.partner_id is not None
        assert le.timezone == "Asia/Ho_Chi_Minh"
        assert {r.status for r in rows} == {LedgerStatus.QUEUED}
        assert all(r.next_attempt_at is not None for r in rows)


def test_waves_enqueue_only_their_time_zones(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
        cid = new_campaign(session).id
        campaigns.freeze(session, cid, Rendered())
        zones = {"Asia/Shanghai", "Asia/Yangon", "Asia/Bangkok", "Asia/Ho_Chi_Minh",
                 "Asia/Phnom_Penh", "Asia/Vientiane"}  # fmt: skip
        lifecycle.schedule(session, cid, datetime(2030, 1, 1, tzinfo=UTC), waves=zones)
    assert lifecycle.start_sending(sessions, cid, timezones={"Asia/Yangon"}) == 1
    assert lifecycle.start_sending(sessions, cid, timezones={"Asia/Yangon"}) == 0
    with sessions.begin() as session:
        campaign = campaigns.get_campaign(session, cid)
        assert "Asia/Yangon" not in campaign.pending_waves
        assert len(campaign.pending_waves) == 5
        assert session.scalar(select(func.count(LedgerRow.id))) == 1
    assert lifecycle.start_sending(sessions, cid) == 5
    with sessions.begin() as session:
        assert campaigns.get_campaign(session, cid).pending_waves == []


def test_progress_and_report_group_rows(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
        cid = new_campaign(session).id
        campaigns.freeze(session, cid, Rendered())
        lifecycle.start_sending(session, cid)
        rows = session.scalars(select(LedgerRow).order_by(LedgerRow.id)).all()
        rows[0].status = LedgerStatus.SENT
        rows[1].status = LedgerStatus.FAILED
        rows[2].status = LedgerStatus.RETRY
    with sessions() as session:
        tally = ledger.progress(session, cid)
        assert (tally.total, tally.sent, tally.failed, tally.retrying, tally.pending) == (
            6,
            1,
            1,
            1,
            3,
        )
        assert not tally.finished
        result = ledger.report(session, cid)
        by_country = {t.key: t for t in result.by_country}
        assert set(by_country) == {"CN", "VN", "TH", "MM", "KH", "LA"}
        assert sum(t.total for t in result.by_timezone) == 6
        assert by_country["MM"].total == 1
        assert [r.email for r in ledger.failures(session, cid, chunk=1)] == [rows[1].email]
        assert [r.campaign_id for r in ledger.deliveries_to(session, "ZHANG@example.cn")] == [cid]


def test_skipped_rows_are_counted_as_settled_not_open(sessions: sessionmaker[Session]) -> None:
    """A row skipped because its person left is done (the progress bar reaches the end)
    and is neither sent, failed nor open, in the totals and in every breakdown."""
    with sessions.begin() as session:
        populate(session)
        cid = new_campaign(session).id
        campaigns.freeze(session, cid, Rendered())
        lifecycle.start_sending(session, cid)
        rows = session.scalars(select(LedgerRow).order_by(LedgerRow.id)).all()
        for row in rows[:4]:
            row.status = LedgerStatus.SENT
        rows[4].status = LedgerStatus.SKIPPED
        rows[5].status = LedgerStatus.SKIPPED
        skipped_country = rows[4].country
    with sessions() as session:
        tally = ledger.progress(session, cid)
        assert (tally.total, tally.sent, tally.skipped, tally.failed) == (6, 4, 2, 0)
        assert tally.pending == tally.retrying == 0 and tally.done == 6 and tally.finished
        result = ledger.report(session, cid)
        assert result.total.skipped == 2
        by_country = {t.key: t for t in result.by_country}
        assert by_country[skipped_country or ""].skipped == 1
        assert sum(t.skipped for t in result.by_timezone) == 2


def test_audience_override_and_unknown_state(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
        cid = new_campaign(session, audience=Audience(countries=("TH",))).id
        campaigns.freeze(session, cid, Rendered())
    assert lifecycle.start_sending(sessions, cid) == 1
    with sessions.begin() as session:
        lifecycle.pause(session, cid, "operator lunch")
        # enqueueing into a paused campaign keeps it paused
        assert lifecycle.start_sending(session, cid) == 0
        assert campaigns.get_campaign(session, cid).state == CampaignState.PAUSED
        lifecycle.resume(session, cid)
        assert campaigns.get_campaign(session, cid).state == CampaignState.SENDING


def test_migration_0002_goes_down_and_up(database_url: str) -> None:
    from sqlalchemy import inspect

    from mailer import db

    engine = db.make_engine(database_url)
    try:
        db.downgrade(engine, "0001")
        assert {"campaigns", "ledger"}.isdisjoint(inspect(engine).get_table_names())
        db.upgrade(engine)
        assert {"campaigns", "ledger"} <= set(inspect(engine).get_table_names())
        assert db.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_sender_and_reply_to_are_made_header_safe(sessions: sessionmaker[Session]) -> None:
    """An internationalised domain becomes xn--... (it was RFC 2047-encoded inside the
    address in From); a non-ASCII local part is refused (most relays refuse it)."""
    with sessions.begin() as session:
        campaign = new_campaign(
            session, sender="Sénder LMEC <news@exämple.org>", reply_to="re@bücher.example"
        )
        assert campaign.sender == "Sénder LMEC <news@xn--exmple-cua.org>"
        assert campaign.reply_to == "re@xn--bcher-kva.example"
        assert new_campaign(session, sender="news@x.org").sender == "news@x.org"
        with pytest.raises(UserInputError, match="sender: the part before @ must be ASCII"):
            new_campaign(session, sender="LMEC <nëws@example.org>")
        with pytest.raises(UserInputError, match=r"sender: 'a@bü\.\.org' is not an email address"):
            new_campaign(session, sender="a@bü..org")


def test_only_a_paused_campaign_resumes(sessions: sessionmaker[Session]) -> None:
    """`resume` on a draft made it 'sending' with nothing frozen and nobody enqueued;
    on a missed one it scheduled it again for a time already past."""
    with sessions.begin() as session:
        draft = new_campaign(session).id
        missed = new_campaign(session).id
        lifecycle.schedule(session, missed, datetime(2030, 1, 1, tzinfo=UTC))
        lifecycle.miss(session, missed, "server down")
    with sessions.begin() as session:
        with pytest.raises(
            campaigns.CampaignError, match=f"campaign {draft} is draft, not paused: .*send it now"
        ):
            lifecycle.resume(session, draft)
        with pytest.raises(campaigns.CampaignError, match=f"campaign {missed} is missed, not"):
            lifecycle.resume(session, missed)
        assert campaigns.get_campaign(session, draft).state == CampaignState.DRAFT
        assert campaigns.get_campaign(session, missed).state == CampaignState.MISSED


def test_sending_to_an_empty_audience_is_refused(sessions: sessionmaker[Session]) -> None:
    """`mailer send` before the import marked the campaign sent, to nobody, for good."""
    with sessions.begin() as session:
        populate(session)
        mailing_lists.add_list(session, "empty")
        cid = new_campaign(session, audience=Audience(lists=("empty",))).id
        campaigns.freeze(session, cid, Rendered())
        other = new_campaign(session).id
        campaigns.freeze(session, other, Rendered())
    with pytest.raises(campaigns.CampaignError, match=f"campaign {cid}: its audience has no rec"):
        lifecycle.start_sending(sessions, cid)
    with sessions() as session:
        assert campaigns.get_campaign(session, cid).state == CampaignState.DRAFT
    # A wave of a zone nobody is in (any more) adds nothing, quietly.
    assert lifecycle.start_sending(sessions, other, timezones=["Europe/Oslo"]) == 0
