"""The application layer the CLI and the web app share (mailer.app): one set of
defaults for a campaign made from an issue, one adapter for the store's errors, one
reading of the subscriber filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.app import campaigns as app_campaigns
from mailer.app.audiences import audience_from, country_choices
from mailer.app.errors import (
    InvalidRecord,
    RecordConflict,
    RecordError,
    RecordNotFound,
    store_errors,
    translate,
)
from mailer.app.subscribers import SubscriberFilter, parse_status
from mailer.authoring.content import load_issue
from mailer.authoring.profile import Sender
from mailer.compose import Root
from mailer.errors import PermanentError, UserInputError
from subscribers import mailing_lists
from subscribers import partners as partner_store
from subscribers.audience import Audience
from subscribers.countries import REGION
from subscribers.errors import Conflict, NotFound, StoreError, StoreInputError
from subscribers.models import SubscriberStatus
from tests.conftest import REPO

SEED = REPO / "examples" / "issues" / "2022-15.yaml"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (NotFound("no list 'x'"), RecordNotFound),
        (Conflict("taken"), RecordConflict),
        (StoreInputError("bad zone"), InvalidRecord),
        (StoreError("refused"), RecordError),
    ],
)
def test_store_errors_become_permanent_errors_keeping_message_and_field(
    raised: StoreError, expected: type[RecordError]
) -> None:
    raised.field = "timezone"
    translated = translate(raised)
    assert type(translated) is expected and isinstance(translated, PermanentError)
    assert str(translated) == str(raised) and translated.field == "timezone"
    assert isinstance(translated, UserInputError) == (expected is InvalidRecord)
    with pytest.raises(expected) as caught, store_errors():
        raise raised
    assert caught.value.__cause__ is raised


def test_the_profile_sender_is_written_one_way() -> None:
    """Quoted where header syntax needs it, never encoded (the builder encodes on send)."""
    assert Sender(name="LMEC Newsletter", address="n@x.org").mailbox == "LMEC Newsletter <n@x.org>"
    assert Sender(name="LMEC, Mekong", address="n@x.org").mailbox == '"LMEC, Mekong" <n@x.org>'
    assert Sender(name="澜湄环境合作", address="n@x.org").mailbox == "澜湄环境合作 <n@x.org>"


def test_a_campaign_from_an_issue_gets_the_same_defaults_everywhere(root: Root) -> None:
    root.upgrade_database()
    issue = load_issue(SEED)
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter")
        made = app_campaigns.create_from_issue(
            session, root.profile, SEED, issue, Audience(lists=("newsletter",)), name="  "
        )
        assert made.name == f"Issue {issue.number}, {issue.year}"
        assert made.sender == root.profile.sender.mailbox
        assert made.reply_to == root.profile.sender.reply_to
        assert made.subject is None  # the issue's own, resolved when content is frozen
        assert app_campaigns.subject_of(root.renderer(), made) == root.renderer().subject(issue)
        chosen = app_campaigns.create_from_issue(
            session,
            root.profile,
            Path(SEED),
            issue,
            Audience(),
            name="Mine",
            subject=" Hello ",
            sender="Desk <desk@example.org>",
        )
        assert (chosen.name, chosen.subject, chosen.sender) == (
            "Mine",
            "Hello",
            "Desk <desk@example.org>",
        )
        with pytest.raises(RecordNotFound, match="unknown list"):
            app_campaigns.create_from_issue(
                session, root.profile, SEED, issue, Audience(lists=("nosuch",))
            )


def test_the_failures_csv_is_neutralised_for_every_caller(root: Root) -> None:
    """The one writer behind `campaign report --failures-csv` and the web download."""
    root.upgrade_database()
    issue = load_issue(SEED)
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter")
        made = app_campaigns.create_from_issue(session, root.profile, SEED, issue, Audience())
        campaign_id = made.id
    with root.sessions() as session:
        data = app_campaigns.failures_csv(session, campaign_id).decode("utf-8")
        assert data.splitlines() == ["email,name,country,attempts,last_reply"]
        assert (
            app_campaigns.failures_filename(campaign_id) == f"campaign-{campaign_id}-failures.csv"
        )
        report = app_campaigns.report(session, campaign_id)
        assert report.campaign.id == campaign_id and report.ledger.total.total == 0


def test_audiences_from_typed_or_ticked_values(root: Root) -> None:
    root.upgrade_database()
    with root.sessions.begin() as session:
        partner_store.add_partner(session, "Green Delta", "VN")
        audience = audience_from(
            session, ["Newsletter, staff"], ["Viet Nam", "la"], ["green delta"], [" Old "]
        )
        assert audience == Audience(
            lists=("newsletter", "staff"),
            countries=("VN", "LA"),
            partners=("Green Delta",),
            exclude_lists=("old",),
        )
        with pytest.raises(InvalidRecord):
            audience_from(session, countries=["Atlantis"])
    codes = [code for code, _name in country_choices()]
    assert set(codes[: len(REGION)]) == set(REGION) and len(codes) > 200  # the region first


def test_subscriber_filters_read_one_way() -> None:
    assert parse_status("") is None and parse_status("bounced") is SubscriberStatus.BOUNCED
    with pytest.raises(InvalidRecord, match="status: 'gone' is not one of active") as caught:
        SubscriberFilter.parse("x", status="gone")
    assert caught.value.field == "status"
    found = SubscriberFilter.parse("an", country="", list_slug="newsletter", status="active")
    assert found == SubscriberFilter("an", None, None, "newsletter", SubscriberStatus.ACTIVE)
    assert found.export_options(active_on_list=True)["statuses"] == [SubscriberStatus.ACTIVE]
