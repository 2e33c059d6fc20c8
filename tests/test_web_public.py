"""Public preference and unsubscribe pages over HTTP (no login): each subscriber sees and
changes only their own subscription, and the pages say nothing about anyone else. Private
lists stay off the preferences page (except for their own members, who can leave them),
and campaigns that reach a private list stay out of the archive, the feed and the web copy.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from sqlalchemy.orm import Session

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer
from mailer.compose import Root, build
from mailer.delivery import campaigns, lifecycle, tokens
from mailer.errors import UserInputError
from subscribers import mailing_lists, privacy, repository
from subscribers.audience import Audience
from subscribers.models import SubscriberStatus
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401
from tests.web_harness import (
    CHROMIUM_ARGS,
    ConsoleLog,
    client,
    csrf_of,
    free_socket,
    make_app,
    no_horizontal_overflow,
    serve,
)

ATOM = "{http://www.w3.org/2005/Atom}"
CHECKBOX = re.compile(r'<input type="checkbox" name="lists" value="([^"]+)"( checked)?')


def _setup(root: Root) -> tuple[TestClient, dict[str, int]]:
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", "Every issue", public=True)
        mailing_lists.add_list(session, "partners-only", "Partners only", "Invitations")  # private
        ids = {
            name: repository.add_subscriber(
                session, f"{name}@example.org", name=name, country="KH", lists=["newsletter"]
            ).id
            for name in ("sokha", "dara", "vanna")
        }
    return client(make_app(root)), ids


def _token(root: Root, subscriber_id: int) -> str:
    return tokens.make_token(root.settings.secret_key.get_secret_value(), subscriber_id)


def _active_lists(root: Root, subscriber_id: int) -> set[str]:
    with root.sessions() as session:
        return {
            s.list.slug
            for s in repository.subscriptions_of(session, subscriber_id)
            if s.status.value == "active"
        }


def test_unsubscribed_person_can_come_back_through_preferences(root: Root) -> None:
    http, ids = _setup(root)
    token = _token(root, ids["sokha"])
    http.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    page = http.get(f"/preferences/{token}")
    assert "s***@example.org" in page.text
    assert "dara" not in page.text and "vanna" not in page.text
    saved = http.post(
        f"/preferences/{token}", data={"csrf_token": csrf_of(page.text), "lists": ["newsletter"]}
    )
    assert saved.headers["location"].endswith("?saved=1")
    assert _active_lists(root, ids["sokha"]) == {"newsletter"}
    with root.sessions() as session:
        person = repository.get_subscriber(session, ids["sokha"])
        assert person.status == SubscriberStatus.ACTIVE
        consent = repository.subscriptions_of(session, ids["sokha"])[0]
        assert consent.consent_source == "preferences" and consent.consent_ip == "testclient"
    # Nothing ticked: unsubscribed from everything.
    http.post(f"/preferences/{token}", data={"csrf_token": csrf_of(page.text)})
    assert _active_lists(root, ids["sokha"]) == set()
    assert _active_lists(root, ids["dara"]) == {"newsletter"}  # nobody else changed


def test_bounced_and_erased_people(root: Root) -> None:
    http, ids = _setup(root)
    with root.sessions.begin() as session:
        repository.set_status(session, ids["dara"], SubscriberStatus.BOUNCED)
        privacy.erase(session, "vanna@example.org")
    dara = _token(root, ids["dara"])
    page = http.get(f"/preferences/{dara}")
    assert "could not be delivered" in page.text
    token = csrf_of(http.get("/login").text)  # the bounced page has no form to take it from
    http.post(f"/preferences/{dara}", data={"csrf_token": token, "lists": ["newsletter"]})
    with root.sessions() as session:
        assert repository.get_subscriber(session, ids["dara"]).status == SubscriberStatus.BOUNCED
    vanna = _token(root, ids["vanna"])
    assert "no longer on our lists" in http.get(f"/preferences/{vanna}").text
    gone = http.get(f"/unsubscribe/{vanna}")
    assert gone.status_code == 200 and "You are unsubscribed" in gone.text
    assert (
        http.post(f"/unsubscribe/{vanna}", data={"List-Unsubscribe": "One-Click"}).status_code
        == 200
    )


def test_a_foreign_page_cannot_change_preferences(root: Root) -> None:
    http, ids = _setup(root)
    token = _token(root, ids["sokha"])
    forged = http.post(f"/preferences/{token}", data={"lists": ["partners-only"]})
    assert forged.status_code == 403
    assert _active_lists(root, ids["sokha"]) == {"newsletter"}


def _offered(html: str) -> dict[str, bool]:
    """The preferences page's checkboxes: slug -> ticked."""
    return {slug: bool(ticked) for slug, ticked in CHECKBOX.findall(html)}


def _subscription_rows(root: Root, subscriber_id: int) -> dict[str, str]:
    with root.sessions() as session:
        return {
            s.list.slug: s.status.value for s in repository.subscriptions_of(session, subscriber_id)
        }


def test_a_private_list_is_neither_shown_nor_granted_to_someone_not_on_it(root: Root) -> None:
    http, ids = _setup(root)
    token = _token(root, ids["sokha"])
    page = http.get(f"/preferences/{token}")
    assert _offered(page.text) == {"newsletter": True}
    assert "partners-only" not in page.text and "Partners only" not in page.text
    csrf = csrf_of(page.text)
    # Posted by hand: with the public list, or alone (which must not read as "untick
    # everything"), or for a list that does not exist. Each is refused the same way,
    # so the answer does not tell a private list from no list at all.
    answers = []
    for wanted in (["newsletter", "partners-only"], ["partners-only"], ["no-such-list"]):
        refused = http.post(f"/preferences/{token}", data={"csrf_token": csrf, "lists": wanted})
        assert refused.status_code == 400
        assert "cannot be chosen here. Nothing was changed." in refused.text
        assert "Partners only" not in refused.text  # the private list's name stays hidden
        assert _offered(refused.text) == {"newsletter": True}  # the form, as it stands
        answers.append(refused.text.replace(wanted[-1], "SLUG"))
        assert _subscription_rows(root, ids["sokha"]) == {"newsletter": "active"}
    assert answers[1] == answers[2]
    # Unsubscribed from everything, the person can come back to public lists only.
    http.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    refused = http.post(
        f"/preferences/{token}", data={"csrf_token": csrf, "lists": ["partners-only"]}
    )
    assert refused.status_code == 400
    assert _subscription_rows(root, ids["sokha"]) == {"newsletter": "unsubscribed"}
    with root.sessions() as session:
        person = repository.get_subscriber(session, ids["sokha"])
        assert person.status == SubscriberStatus.UNSUBSCRIBED


def test_a_member_of_a_private_list_sees_it_and_can_leave_it(root: Root) -> None:
    http, ids = _setup(root)
    with root.sessions.begin() as session:
        repository.subscribe(session, ids["dara"], "partners-only", source="manual")
    token = _token(root, ids["dara"])
    page = http.get(f"/preferences/{token}")
    assert _offered(page.text) == {"newsletter": True, "partners-only": True}
    assert "Partners only" in page.text and "Invitations" in page.text
    assert "Members only: once you leave it" in page.text
    csrf = csrf_of(page.text)
    # Staying on both is fine; then leaving the private list keeps the public one.
    kept = http.post(
        f"/preferences/{token}", data={"csrf_token": csrf, "lists": ["newsletter", "partners-only"]}
    )
    assert kept.status_code == 303 and _active_lists(root, ids["dara"]) == {
        "newsletter",
        "partners-only",
    }
    left = http.post(f"/preferences/{token}", data={"csrf_token": csrf, "lists": ["newsletter"]})
    assert left.status_code == 303 and left.headers["location"].endswith("?saved=1")
    assert _subscription_rows(root, ids["dara"]) == {
        "newsletter": "active",
        "partners-only": "unsubscribed",
    }
    with root.sessions() as session:
        record = {s.list.slug: s for s in repository.subscriptions_of(session, ids["dara"])}
        assert record["partners-only"].unsubscribe_source == "preferences"
    # Gone from the page, and no way back from it.
    assert _offered(http.get(f"/preferences/{token}").text) == {"newsletter": True}
    back = http.post(
        f"/preferences/{token}", data={"csrf_token": csrf, "lists": ["newsletter", "partners-only"]}
    )
    assert back.status_code == 400
    assert _active_lists(root, ids["dara"]) == {"newsletter"}
    # A list the operator makes public is offered to everyone.
    with root.sessions.begin() as session:
        mailing_lists.update_list(session, "partners-only", public=True)
    assert _offered(http.get(f"/preferences/{_token(root, ids['vanna'])}").text) == {
        "newsletter": True,
        "partners-only": False,
    }


# --- the archive, its feed and the web copy -------------------------------------------


@dataclass(frozen=True)
class _Issue:
    slug: str
    number: int
    language: str = "en"


@dataclass(frozen=True)
class _Rendered:
    subject: str
    preheader: str = "The line inboxes show"
    html: str = "<p>Hello %%NAME%%</p>"
    text: str = "Hello"
    language: str = "en"


def _sent(session: Session, slug: str, subject: str, lists: tuple[str, ...]) -> int:
    """A campaign of issue `slug` to `lists` that has started sending."""
    campaign = campaigns.create_campaign(
        session,
        name=subject,
        issue_path=f"examples/issues/{slug}.yaml",
        issue=_Issue(slug, int(slug.rsplit("-", 1)[1])),
        sender="LMEC <news@lmec.example.org>",
        audience=Audience(lists=lists),
    )
    campaigns.freeze(session, campaign.id, _Rendered(subject))
    assert lifecycle.start_sending(session, campaign.id) > 0
    return campaign.id


def _published(http: TestClient, candidates: set[int]) -> tuple[set[int], set[int], set[int]]:
    """The campaign ids in the archive page, in the Atom feed, and those of `candidates`
    that `/view` serves."""
    page = {int(i) for i in re.findall(r'href="/view/(\d+)"', http.get("/archive").text)}
    feed = ET.fromstring(http.get("/archive/feed.atom").content)  # noqa: S314 - our own output
    ids = {
        int(str(entry.findtext(f"{ATOM}id")).rsplit("/", 1)[1])
        for entry in feed.findall(f"{ATOM}entry")
    }
    viewable = {i for i in candidates if http.get(f"/view/{i}").status_code == 200}
    return page, ids, viewable


def test_the_archive_publishes_only_campaigns_sent_to_public_lists(root: Root) -> None:
    http, ids = _setup(root)
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "events", "Events", public=True)
        repository.subscribe(session, ids["sokha"], "partners-only")
        repository.subscribe(session, ids["dara"], "events")
        public = _sent(session, "2022-13", "Issue 13 for everyone", ("newsletter", "events"))
        private = _sent(session, "2022-14", "Issue 14 for partners", ("partners-only",))
        mixed = _sent(session, "2022-16", "Issue 16 mixed", ("newsletter", "partners-only"))
        # Issue 15 went to partners first, then to the newsletter: the archive shows the
        # newsletter's campaign, never the partners' copy.
        early = _sent(session, "2022-15", "Issue 15 partners copy", ("partners-only",))
        later = _sent(session, "2022-15", "Issue 15", ("newsletter",))
        anyone = _sent(session, "2022-17", "Issue 17 to every list", ())
    every = {public, private, mixed, early, later, anyone}
    published = {public, later}
    assert _published(http, every) == (published, published, published)
    archive = http.get("/archive").text
    assert "Issue 13 for everyone" in archive and "Issue 15" in archive
    for hidden in ("Issue 14", "Issue 16", "partners copy", "Issue 17"):
        assert hidden not in archive and hidden not in http.get("/archive/feed.atom").text
    for unpublished in (private, mixed, early, anyone):
        gone = http.get(f"/view/{unpublished}")
        assert gone.status_code == 404 and "not available" in gone.text  # as for no campaign
        assert "Hello" not in gone.text
    assert http.get("/view/999").status_code == 404

    # Visibility is read when asked: once every list is public, an audience naming no
    # list is published too; a list made private takes its campaigns off at once.
    with root.sessions.begin() as session:
        mailing_lists.update_list(session, "partners-only", public=True)
    everything = every - {later}
    assert _published(http, every)[0] == everything  # issue 15's first campaign is now public
    with root.sessions.begin() as session:
        mailing_lists.update_list(session, "events", public=False)
    archived = {private, mixed, early}
    assert _published(http, every) == (archived, archived, archived | {later})


class _Labelled(HTMLParser):
    """The `<title>` and the `aria-label` of the email's article (set from mj-title)."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.labels: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._in_title = tag == "title"
        if found.get("role") == "article":
            self.labels.append(found.get("aria-label") or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _title_and_labels(markup: str) -> tuple[str, list[str]]:
    parser = _Labelled()
    parser.feed(markup)
    return parser.title, parser.labels


SEED = REPO / "examples" / "issues" / "2022-13.yaml"
OVERRIDE = "Issue 13: the Working Group met in Beijing — 澜沧江-湄公河"


def _mail_root(tmp_path: Path, database_url: str, smtp_port: int, **overrides: object) -> Root:
    return build(
        make_settings(
            tmp_path,
            database_url=database_url,
            smtp_port=smtp_port,
            retry_base_seconds=0.0,
            **overrides,
        )
    )


def _send_seed(root: Root, subject: str | None = None) -> int:
    """Issue 13 (the real seed, rendered by the real renderer) sent to two people of the
    public list through the SMTP server the root names; the campaign's id."""
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", public=True)
        for index, name in enumerate(("sokha", "ລອນຄຳ")):
            repository.add_subscriber(
                session, f"p{index}@example.org", name=name, lists=["newsletter"]
            )
        campaign = campaigns.create_campaign(
            session,
            name="Issue 13",
            issue_path=SEED,
            issue=load_issue(SEED),
            sender="LMEC Newsletter <newsletter@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
            subject=subject,
        )
        campaign_id = campaign.id
    lifecycle.start_sending(
        root.sessions, campaign_id, renderer=Renderer.from_settings(root.settings)
    )
    root.worker().run(threading.Event(), until_idle=True)
    with root.sessions() as session:
        assert campaigns.get_campaign(session, campaign_id).state == "sent"
    return campaign_id


def test_the_campaign_subject_is_the_one_subject_everywhere(
    tmp_path: Path,
    database_url: str,
    smtp_server: SMTPTestServer,  # noqa: F811 - the fixture imported above
) -> None:
    """The campaign's own subject is the Subject header (read back from a real SMTP
    server), the HTML title, the article's aria-label and the web copy's title."""
    root = _mail_root(tmp_path, database_url, smtp_server.port)
    try:
        campaign_id = _send_seed(root, subject=f"  {OVERRIDE}  ")
        messages = smtp_server.parsed()
        assert len(messages) == 2
        for message in messages:
            assert message["Subject"] == OVERRIDE  # decoded from RFC 2047 by the parser
            html_part = message.get_body(("html",))
            assert html_part is not None
            assert _title_and_labels(html_part.get_content()) == (OVERRIDE, [OVERRIDE])
        view = client(make_app(root)).get(f"/view/{campaign_id}")
        assert view.status_code == 200
        assert _title_and_labels(view.text) == (OVERRIDE, [OVERRIDE])
        assert f">{OVERRIDE}</a>" in client(make_app(root)).get("/archive").text
    finally:
        root.close()


def test_a_per_recipient_slot_in_a_campaign_subject_is_refused(root: Root) -> None:
    with root.sessions.begin() as session, pytest.raises(UserInputError) as refused:
        campaigns.create_campaign(
            session,
            name="Issue 13",
            issue_path=SEED,
            issue=load_issue(SEED),
            sender="LMEC <news@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
            subject="News for %%EMAIL%%",
        )
    assert str(refused.value).startswith("subject: %%EMAIL%% cannot be used here")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def _hrefs(markup: str) -> list[str]:
    parser = _Links()
    parser.feed(markup)
    return parser.hrefs


PER_RECIPIENT = ("/unsubscribe", "/preferences", "/view/")


def test_the_web_copy_has_a_footer_for_a_web_page(
    tmp_path: Path,
    database_url: str,
    smtp_server: SMTPTestServer,  # noqa: F811 - the fixture imported above
) -> None:
    """Nobody's name or address, no unsubscribe or preferences link leading to a page
    that says "use the link in your email", no "view in browser" linking to itself;
    while every email keeps its recipient's footer."""
    root = _mail_root(tmp_path, database_url, smtp_server.port)
    try:
        campaign_id = _send_seed(root)
        http = client(make_app(root))
        page = http.get(f"/view/{campaign_id}")
        assert page.status_code == 200
        assert "This is the web copy of Issue 13, 2022." in page.text
        for email_only in ("This email was sent to", "View in your browser", "Unsubscribe"):
            assert email_only not in page.text
        assert "subscriber" not in page.text and "your address" not in page.text
        assert "%%" not in page.text and "email-only" not in page.text
        links = _hrefs(page.text)
        assert links.count("/archive") == 2 and links.count("/subscribe") == 1
        # The language switch (`?lang=`) links to this page in the other languages.
        switch = [h for h in links if "?lang=" in h]
        assert len(switch) == 7 and all(h.startswith(f"/view/{campaign_id}?") for h in switch)
        assert [h for h in links if h not in switch and any(p in h for p in PER_RECIPIENT)] == []
        info = http.get("/subscribe")
        assert info.status_code == 200
        assert "mailto:li.xia@fecomee.org.cn" in info.text  # the profile's reply-to
        assert "links to manage your subscription and to unsubscribe" in info.text

        for message in smtp_server.parsed():  # the emails keep what only they show
            html_part = message.get_body(("html",))
            assert html_part is not None
            body = html_part.get_content()
            assert "This email was sent to" in body and "web copy" not in body
            links = _hrefs(body)
            assert all(any(part in h for h in links) for part in PER_RECIPIENT)
    finally:
        root.close()


@pytest.mark.browser
def test_the_web_copy_in_chromium(
    tmp_path: Path,
    database_url: str,
    artifacts: Path,
    smtp_server: SMTPTestServer,  # noqa: F811 - the fixture imported above
) -> None:
    """/view/<id> of a sent campaign as a reader's browser shows it, at 600 and 375 px:
    the web copy's footer, and links that lead somewhere useful. Screenshots in
    test-artifacts/web-copy-*.png."""
    sock = free_socket()
    host, port = sock.getsockname()
    root = _mail_root(
        tmp_path, database_url, smtp_server.port, public_base_url=f"http://{host}:{port}"
    )
    db = root.engine.dialect.name
    console = ConsoleLog()
    try:
        campaign_id = _send_seed(root)
        with serve(make_app(root), sock) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for width in (600, 375):
                page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
                console.attach(page)
                page.goto(f"{base}/view/{campaign_id}")
                body = page.locator("body").inner_text()
                assert "This is the web copy of Issue 13, 2022." in body
                for email_only in ("This email was sent to", "View in your browser"):
                    assert email_only not in body
                assert "Unsubscribe" not in body and "Manage your subscription" not in body
                hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
                assert f"{base}/archive" in hrefs and f"{base}/subscribe" in hrefs
                assert [  # the language switch (`?lang=`) links to this page itself
                    h
                    for h in hrefs
                    if "?lang=" not in h and any(part in h for part in PER_RECIPIENT)
                ] == []
                assert no_horizontal_overflow(page)
                page.screenshot(path=str(artifacts / f"web-copy-{width}-{db}.png"), full_page=True)
                footer = page.locator("a", has_text="Subscribe or manage your subscription")
                footer.scroll_into_view_if_needed()
                page.screenshot(path=str(artifacts / f"web-copy-footer-{width}-{db}.png"))
                footer.click()
                page.wait_for_url(f"{base}/subscribe")
                assert "li.xia@fecomee.org.cn" in page.locator("main").inner_text()
                assert no_horizontal_overflow(page)
                page.screenshot(path=str(artifacts / f"web-subscribe-{width}-{db}.png"))
                page.go_back()
                page.locator("a", has_text="Past issues").last.click()
                page.wait_for_url(f"{base}/archive")
                assert page.locator(f'a[href="/view/{campaign_id}"]').count() == 1
                page.context.close()
            browser.close()
    finally:
        root.close()
    assert console.errors == []
