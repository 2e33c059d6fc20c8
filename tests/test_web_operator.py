"""Operator pages over HTTP: CSV import with its per-line report, export, editing,
erasure, suppression and users, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailer.authoring.content import load_issue
from mailer.compose import Root
from mailer.delivery import campaigns
from mailer.delivery.ledger import LedgerRow
from mailer.people.accounts import User
from mailer.people.privacy import erase_person
from subscribers import mailing_lists, repository, suppression
from subscribers import partners as partner_store
from subscribers.audience import Audience, count_audience
from subscribers.models import Subscriber
from tests.conftest import REPO
from tests.web_harness import add_user, login, make_app

GOOD = (
    "email,name,country,partner,lists\n"
    "an.nguyen@example.vn,Nguyễn Văn An,VN,,newsletter\n"
    "sok@example.kh,សុខ ចាន់,Cambodia,,newsletter\n"
    "AN.NGUYEN@example.vn,,,,\n"
)
BAD = "email,name,country\nnot-an-address,X,VN\nok@example.org,Y,Atlantis\n"


def _admin(root: Root) -> tuple[FastAPI, TestClient, str]:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter")
    http, token = login(app, "admin@example.org")
    return app, http, token


def _upload(http: TestClient, token: str, text: str, **fields: str):
    return http.post(
        "/subscribers/import",
        data={"csrf_token": token, **fields},
        files={"file": ("people.csv", text.encode("utf-8"), "text/csv")},
    )


def test_import_reports_per_line_and_is_all_or_nothing(root: Root) -> None:
    _, http, token = _admin(root)
    rejected = _upload(http, token, BAD, skip_invalid="", dry_run="true", encoding="utf-8")
    assert rejected.status_code == 400
    assert "nothing was imported" in rejected.text
    assert "people.csv: 2 problems" in rejected.text
    assert "Atlantis" in rejected.text
    # The form comes back with the options chosen (a browser never keeps the file).
    assert 'name="dry_run" value="true" checked' in rejected.text
    assert 'name="encoding" value="utf-8"' in rejected.text
    with root.sessions() as session:
        assert session.scalars(select(Subscriber)).all() == []

    dry = _upload(http, token, GOOD, dry_run="true")
    assert "dry run, nothing written" in dry.text
    with root.sessions() as session:
        assert session.scalars(select(Subscriber)).all() == []

    done = _upload(http, token, GOOD)
    assert "3 rows read; 2 subscribers created" in done.text
    assert "line 4: AN.NGUYEN@example.vn (first on line 2)" in done.text
    again = _upload(http, token, GOOD)  # re-running changes nothing
    assert "0 subscribers created; 0 updated; 2 unchanged" in again.text

    skipped = _upload(http, token, BAD, skip_invalid="true")
    assert "Invalid rows skipped" in skipped.text
    assert "; 2 invalid rows skipped" in skipped.text
    one = _upload(http, token, "email\nok@example.org\nnot-an-address\n", skip_invalid="true")
    assert "2 rows read; 1 subscriber created" in one.text
    assert "; 1 invalid row skipped" in one.text and "1 invalid rows" not in one.text


def test_export_edit_erase_and_suppress(root: Root) -> None:
    _, http, token = _admin(root)
    _upload(http, token, GOOD)
    exported = http.get("/subscribers/export.csv?country=VN")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["email"] for r in rows] == ["an.nguyen@example.vn"]
    assert rows[0]["name"] == "Nguyễn Văn An"

    with root.sessions() as session:
        an = repository.get_subscriber(session, "an.nguyen@example.vn")
    saved = http.post(
        f"/subscribers/{an.id}",
        data={
            "csrf_token": token,
            "email": "an.nguyen@example.vn",
            "name": "Nguyễn Văn An",
            "country": "LA",
            "language": "vi",
            "status": "active",
        },
    )
    assert saved.status_code == 303
    with root.sessions() as session:
        changed = repository.get_subscriber(session, an.id)
        assert changed.country == "LA" and changed.timezone == "Asia/Vientiane"
        assert repository.subscriptions_of(session, an.id)[0].status.value == "unsubscribed"

    with root.sessions.begin() as session:  # a delivery to erase along with the person
        campaign = campaigns.create_campaign(
            session,
            name="Issue 15",
            issue_path="examples/issues/2022-15.yaml",
            issue=load_issue(REPO / "examples" / "issues" / "2022-15.yaml"),
            sender="LMEC <news@lmec.example.org>",
            audience=Audience(),
        )
        session.add(
            LedgerRow(
                campaign_id=campaign.id,
                subscriber_id=an.id,
                email="an.nguyen@example.vn",
                name="Nguyễn Văn An",
                status="sent",
            )
        )

    # Erasing asks first, saying what goes; anything but confirm=yes only asks again.
    for data in ({}, {"confirm": "x"}, {"confirm": "an.nguyen@example.vn"}):
        asked = http.post(f"/subscribers/{an.id}/erase", data={"csrf_token": token, **data})
        assert asked.status_code == 200 and "Erase an.nguyen@example.vn?" in asked.text
        assert "1 subscription (0 active)" in asked.text
        assert "blanked in 1 delivery of the ledger" in asked.text
        assert 'name="confirm" value="yes"' in asked.text
        assert f'href="/subscribers/{an.id}">Cancel</a>' in asked.text
    assert "Erase an.nguyen@example.vn?" in http.get(f"/subscribers/{an.id}/erase").text
    with root.sessions() as session:
        assert repository.find_subscriber(session, "an.nguyen@example.vn") is not None
    erased = http.post(f"/subscribers/{an.id}/erase", data={"csrf_token": token, "confirm": "yes"})
    assert erased.status_code == 303
    with root.sessions() as session:
        assert repository.find_subscriber(session, "an.nguyen@example.vn") is None
        assert suppression.is_suppressed(session, "an.nguyen@example.vn")
        delivery = session.scalars(select(LedgerRow)).one()
        assert (delivery.email, delivery.name) == ("erased@invalid", None)
    table = http.get("/suppression").text.split("<table>")[1]
    assert "(erased)" in table and "an.nguyen" not in table

    http.post("/suppression", data={"csrf_token": token, "email": "bounce@example.org"})
    with root.sessions() as session:
        assert suppression.is_suppressed(session, "bounce@example.org")
    http.post("/suppression/remove", data={"csrf_token": token, "email": "bounce@example.org"})
    with root.sessions() as session:
        assert not suppression.is_suppressed(session, "bounce@example.org")


def test_users_page_creates_and_removes_editors(root: Root) -> None:
    app, http, token = _admin(root)
    created = http.post(
        "/users",
        data={
            "csrf_token": token,
            "email": "new.editor@example.org",
            "password": "another long password",
            "role": "editor",
        },
    )
    assert created.status_code == 303
    editor_http, _ = login(app, "new.editor@example.org", "another long password")
    assert editor_http.get("/subscribers").status_code == 403
    with root.sessions() as session:
        editor = session.scalars(select(User).where(User.email == "new.editor@example.org")).one()
        me = session.scalars(select(User).where(User.email == "admin@example.org")).one()
    assert http.post(f"/users/{me.id}/delete", data={"csrf_token": token}).status_code == 303
    asked = http.post(f"/users/{editor.id}/delete", data={"csrf_token": token})
    assert asked.status_code == 200 and "Remove user new.editor@example.org?" in asked.text
    assert "new.editor@example.org (editor) can no longer sign in." in asked.text
    assert "1 open session ends now." in asked.text
    assert http.get(f"/users/{editor.id}/delete").status_code == 200
    assert editor_http.get("/issues").status_code == 200  # not removed yet
    removed = http.post(f"/users/{editor.id}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert removed.status_code == 303
    with root.sessions() as session:
        assert [u.email for u in session.scalars(select(User))] == ["admin@example.org"]
    assert editor_http.get("/issues").status_code == 303  # removed user: session ends


def test_settings_page_shows_settings_but_never_secrets(root: Root) -> None:
    _, http, _ = _admin(root)
    page = http.get("/settings").text
    assert "MAILER_SMTP_PORT" in page and "MAILER_PUBLIC_BASE_URL" in page
    assert root.settings.secret_key.get_secret_value() not in page
    assert "MAILER_SECRET_KEY</code></td><td>(set)" in page
    assert "development default" not in page  # the tests use their own key


def test_lists_page_sets_public_or_private_with_the_csrf_token(root: Root) -> None:
    _, http, token = _admin(root)

    def public() -> dict[str, bool]:
        with root.sessions() as session:
            return {x.slug: x.public for x in mailing_lists.list_lists(session)}

    page = http.get("/lists").text
    assert 'name="public" value="true"' in page and "private list is shown only" in page
    assert public() == {"newsletter": False}
    added = http.post(
        "/lists", data={"csrf_token": token, "slug": "events", "name": "Events", "public": "true"}
    )
    assert added.status_code == 303
    http.post("/lists", data={"csrf_token": token, "slug": "staff"})  # box unticked
    assert public() == {"newsletter": False, "events": True, "staff": False}
    assert "Added private list staff." in http.get("/lists").text
    page = http.get("/lists").text
    assert 'value="true" checked> Public' in page  # the events row shows its box ticked

    saved = http.post(
        "/lists/newsletter",
        data={"csrf_token": token, "name": "Newsletter", "description": "", "public": "true"},
    )
    assert saved.status_code == 303 and public()["newsletter"] is True
    # The row's form without the box (unticked) makes the list private again.
    http.post("/lists/newsletter", data={"csrf_token": token, "name": "Newsletter"})
    assert public()["newsletter"] is False
    # No CSRF token: refused, nothing changes.
    forged = http.post("/lists/newsletter", data={"name": "Newsletter", "public": "true"})
    assert forged.status_code == 403 and public()["newsletter"] is False
    # A hand-made value: a page naming the field, nothing changes.
    odd = http.post("/lists/newsletter", data={"csrf_token": token, "public": "perhaps"})
    assert odd.status_code == 400 and "public:" in odd.text
    assert public()["newsletter"] is False


def _sent_campaign(root: Root, audience: Audience) -> int:
    """A campaign that went out to `audience` (its frozen copy is what /view shows)."""
    with root.sessions.begin() as session:
        campaign = campaigns.create_campaign(
            session,
            name="Issue 15",
            issue_path="examples/issues/2022-15.yaml",
            issue=load_issue(REPO / "examples" / "issues" / "2022-15.yaml"),
            sender="LMEC <news@lmec.example.org>",
            audience=audience,
        )
        now = datetime.now(UTC)
        campaign.frozen_subject, campaign.frozen_preheader = "Issue 15", ""
        campaign.frozen_html, campaign.frozen_text = "<p>Issue 15</p>", "Issue 15"
        campaign.frozen_at = campaign.started_at = campaign.finished_at = now
        campaign.state = campaigns.CampaignState.SENT
        return campaign.id


def test_removing_a_list_campaigns_used_asks_then_archives_it(root: Root) -> None:
    """The demo's loss: removing `newsletter` deleted every subscription and made
    `/view/<id>` of every issue sent to it a 404. Now the page says what will be lost,
    changes nothing until confirmed, and then archives the list instead."""
    _, http, token = _admin(root)
    with root.sessions.begin() as session:
        mailing_lists.update_list(session, "newsletter", public=True)
        mailing_lists.add_list(session, "unused", "Unused")
        for n in range(3):
            repository.add_subscriber(session, f"p{n}@example.org", lists=["newsletter", "unused"])
        repository.unsubscribe(
            session, repository.get_subscriber(session, "p2@example.org").id, "newsletter"
        )
    sent = _sent_campaign(root, Audience(lists=("newsletter",)))
    assert http.get(f"/view/{sent}").status_code == 200

    asked = http.post("/lists/newsletter/delete", data={"csrf_token": token})
    assert asked.status_code == 200
    assert "Remove list Newsletter (newsletter)?" in asked.text
    assert "2 active subscriptions end" in asked.text
    assert "It is archived, not deleted: 1 campaign used it (1 sent)" in asked.text
    assert "Archive the list</button>" in asked.text
    assert 'href="/lists">Cancel</a>' in asked.text
    assert 'name="confirm" value="yes"' in asked.text and f'value="{token}"' in asked.text
    assert http.get("/lists/newsletter/delete").text.count("2 active subscriptions end") == 1
    with root.sessions() as session:  # asking changed nothing
        assert [x.slug for x in mailing_lists.list_lists(session)] == ["newsletter", "unused"]

    done = http.post("/lists/newsletter/delete", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    page = http.get("/lists").text
    assert "Archived list newsletter: 2 active subscriptions ended" in page
    assert 'action="/lists/newsletter/delete"' not in page  # no longer offered...
    assert "Removed lists kept for their campaigns" in page  # ...but kept
    assert http.get(f"/view/{sent}").status_code == 200  # the web copy still opens
    assert f"/view/{sent}" in http.get("/archive").text
    with root.sessions() as session:
        kept = mailing_lists.get_list(session, "newsletter", archived=True)
        assert kept.archived and kept.public
        states = {
            (x.list.slug, x.status.value, x.unsubscribe_source)
            for p in ("p0", "p1")
            for x in repository.subscriptions_of(
                session, repository.get_subscriber(session, f"{p}@example.org").id
            )
        }
        assert states == {
            ("newsletter", "unsubscribed", "list-removed"),
            ("unused", "active", None),
        }
        assert count_audience(session, Audience(lists=("unused",))) == 3
        assert count_audience(session, Audience()) == 3  # "all lists" no longer includes it
    # Offered nowhere: not on the forms, not addable again, not subscribable.
    assert 'value="newsletter"' not in http.get("/subscribers").text
    again = http.post("/lists", data={"csrf_token": token, "slug": "newsletter"})
    assert again.status_code == 400 and "a removed list, kept for its campaigns" in again.text
    refused = http.post(
        "/subscribers",
        data={"csrf_token": token, "email": "new@example.org", "lists": "newsletter"},
    )
    assert refused.status_code == 400 and "was removed on" in refused.text
    assert 'id="err-lists"' in refused.text

    # A list no campaign used is deleted, after saying so.
    asked = http.post("/lists/unused/delete", data={"csrf_token": token})
    assert "3 active subscriptions and 0 unsubscribed records" in asked.text
    assert "No campaign used this list, so it is deleted for good." in asked.text
    http.post("/lists/unused/delete", data={"csrf_token": token, "confirm": "yes"})
    with root.sessions() as session:
        assert mailing_lists.list_lists(session) == []
        assert [x.slug for x in mailing_lists.list_lists(session, archived=True)] == ["newsletter"]


def test_removing_a_partner_and_cancelling_a_campaign_ask_first(root: Root) -> None:
    _, http, token = _admin(root)
    with root.sessions.begin() as session:
        partner = partner_store.add_partner(session, "Green Delta", "VN")
        partner_id = partner.id
        for n in range(2):
            repository.add_subscriber(
                session, f"g{n}@example.vn", partner="Green Delta", lists=["newsletter"]
            )
        draft = campaigns.create_campaign(
            session,
            name="Issue 13",
            issue_path="examples/issues/2022-13.yaml",
            issue=load_issue(REPO / "examples" / "issues" / "2022-13.yaml"),
            sender="LMEC <news@lmec.example.org>",
            audience=Audience(partners=("Green Delta",)),
        )
        draft_id = draft.id

    asked = http.post(f"/partners/{partner_id}/delete", data={"csrf_token": token})
    assert asked.status_code == 200 and "Remove partner Green Delta?" in asked.text
    assert "2 contacts lose this partner" in asked.text
    assert "1 campaign names this partner in its audience" in asked.text
    with root.sessions() as session:
        assert partner_store.list_partners(session)
    cancel = http.post(f"/campaigns/{draft_id}/cancel", data={"csrf_token": token})
    assert cancel.status_code == 200 and "Cancel campaign Issue 13?" in cancel.text
    assert "Nobody gets it: its audience of 2 people." in cancel.text
    assert f'href="/campaigns/{draft_id}">Keep the campaign</a>' in cancel.text
    with root.sessions() as session:
        assert campaigns.get_campaign(session, draft_id).state == "draft"
    http.post(f"/campaigns/{draft_id}/cancel", data={"csrf_token": token, "confirm": "yes"})
    with root.sessions() as session:
        assert campaigns.get_campaign(session, draft_id).state == "cancelled"
    # Nothing left to cancel: no question, the usual refusal.
    again = http.post(f"/campaigns/{draft_id}/cancel", data={"csrf_token": token})
    assert again.status_code == 303

    http.post(f"/partners/{partner_id}/delete", data={"csrf_token": token, "confirm": "yes"})
    with root.sessions() as session:
        assert partner_store.list_partners(session) == []
        assert repository.get_subscriber(session, "g0@example.vn").partner_id is None


def test_a_failed_save_comes_back_with_what_was_typed(root: Root) -> None:
    """Change name and partner, type a bad time zone, save: the error beside the field,
    and every edit kept (it used to come back with the stored values)."""
    _, http, token = _admin(root)
    with root.sessions.begin() as session:
        partner_store.add_partner(session, "Green Delta", "VN")
        partner_store.add_partner(session, "Mekong Watch", "TH")
        sub = repository.add_subscriber(
            session, "aung@example.org", name="Aung", country="MM", partner="Green Delta"
        )
        sub_id = sub.id
    failed = http.post(
        f"/subscribers/{sub_id}",
        data={
            "csrf_token": token,
            "email": "aung@example.org",
            "name": "Aung Kyaw",
            "country": "MM",
            "partner": "Mekong Watch",
            "language": "my",
            "timezone": "Mars/Olympus",
            "status": "active",
            "lists": "newsletter",
        },
    )
    assert failed.status_code == 400
    page = failed.text
    assert 'name="name" value="Aung Kyaw"' in page
    assert '<option value="Mekong Watch" selected>' in page
    assert 'name="language" value="my"' in page
    assert 'name="timezone" value="Mars/Olympus" aria-invalid="true"' in page
    assert '<span class="field-error" id="err-timezone">' in page and "Mars/Olympus" in page
    assert 'value="newsletter" checked' in page
    with root.sessions() as session:
        stored = repository.get_subscriber(session, sub_id)
        assert (stored.name, stored.timezone) == ("Aung", "Asia/Yangon")

    # The other forms of the operator pages do the same.
    add = http.post(
        "/subscribers",
        data={"csrf_token": token, "email": "not an address", "name": "Sok", "country": "KH"},
    )
    assert add.status_code == 400 and 'id="err-email"' in add.text
    assert 'value="Sok"' in add.text and '<option value="KH" selected>' in add.text
    partner = http.post("/partners", data={"csrf_token": token, "name": "Green Delta"})
    assert partner.status_code == 400 and 'id="err-add-name"' in partner.text
    assert "already exists" in partner.text
    with root.sessions() as session:
        green = partner_store.get_partner(session, "Green Delta").id
    edit = http.post(f"/partners/{green}", data={"csrf_token": token, "name": "Mekong Watch"})
    assert (
        edit.status_code == 400
        and 'value="Mekong Watch" required aria-label="Name" aria-invalid' in edit.text
    )
    long_name = http.post("/lists/newsletter", data={"csrf_token": token, "name": "N" * 201})
    assert long_name.status_code == 400 and 'value="' + "N" * 201 + '"' in long_name.text
    assert "name is longer than 200 characters" in long_name.text
    bad_list = http.post(
        "/lists", data={"csrf_token": token, "slug": "Bad Slug", "name": "Typed name"}
    )
    assert bad_list.status_code == 400 and 'id="err-slug"' in bad_list.text
    assert 'value="Bad Slug"' in bad_list.text and 'value="Typed name"' in bad_list.text
    user = http.post(
        "/users",
        data={"csrf_token": token, "email": "ed@example.org", "name": "Ed", "password": "short"},
    )
    assert user.status_code == 400 and 'id="err-password"' in user.text
    assert 'value="ed@example.org"' in user.text and "at least 10 characters" in user.text
    suppressed = http.post(
        "/suppression", data={"csrf_token": token, "email": "nope", "reason": "x"}
    )
    assert suppressed.status_code == 400 and 'id="err-email"' in suppressed.text
    assert 'name="reason" value="x"' in suppressed.text


def test_a_new_country_moves_the_time_zone_as_in_the_cli(root: Root) -> None:
    """Myanmar to Thailand in the web app stayed Asia/Yangon: the form sends the zone
    back unchanged, and the library took that as a choice. An unchanged zone is none."""
    _, http, token = _admin(root)
    with root.sessions.begin() as session:
        sub_id = repository.add_subscriber(session, "aung@example.org", country="MM").id
    form = {
        "csrf_token": token,
        "email": "aung@example.org",
        "country": "TH",
        "language": "en",
        "timezone": "Asia/Yangon",
        "status": "active",
    }
    saved = http.post(f"/subscribers/{sub_id}", data=form)
    assert saved.status_code == 303
    assert (
        "Time zone Asia/Yangon → Asia/Bangkok, with the new country."
        in http.get(f"/subscribers/{sub_id}").text
    )
    with root.sessions() as session:
        assert repository.get_subscriber(session, sub_id).timezone == "Asia/Bangkok"
    # A zone typed on purpose stays, whatever the country.
    http.post(f"/subscribers/{sub_id}", data={**form, "country": "VN", "timezone": "UTC"})
    with root.sessions() as session:
        assert repository.get_subscriber(session, sub_id).timezone == "UTC"


def test_re_adding_an_erased_address_says_it_stays_suppressed(root: Root) -> None:
    _, http, token = _admin(root)
    with root.sessions.begin() as session:
        repository.add_subscriber(session, "gone@example.org")
        erase_person(session, "gone@example.org")
    added = http.post("/subscribers", data={"csrf_token": token, "email": "Gone@example.org"})
    assert added.status_code == 303
    page = http.get(added.headers["location"]).text
    assert (
        "Added Gone@example.org. It stays on the suppression list (it was erased earlier)" in page
    )
    assert "flash-warn" in page and 'id="suppressed"' in page
    with root.sessions.begin() as session:
        suppression.suppress(session, "bounced@example.org", "550 no such user")
    http.post("/subscribers", data={"csrf_token": token, "email": "bounced@example.org"})
    assert "(reason: 550 no such user)" in http.get("/subscribers").text
    fresh = http.post("/subscribers", data={"csrf_token": token, "email": "new@example.org"})
    fresh_page = http.get(fresh.headers["location"]).text
    assert "Added new@example.org." in fresh_page
    assert (
        "It stays on the suppression list" not in fresh_page and 'id="suppressed"' not in fresh_page
    )


def test_export_follows_the_filter_with_a_bom_and_streams(root: Root) -> None:
    """The export used to ignore the search and the list filter and had no byte-order
    mark, so spreadsheets garbled Thai and Khmer; it is now streamed, too."""
    _, http, token = _admin(root)
    _upload(http, token, GOOD)
    with root.sessions.begin() as session:
        repository.add_subscriber(session, "somchai@example.th", name="สมชาย ใจดี", country="TH")
    page = http.get("/subscribers?q=example.vn&list=newsletter").text
    assert "1 subscriber matches the filter." in page
    assert (
        'href="/subscribers/export.csv?q=example.vn&amp;country=&amp;partner=&amp;list=newsletter'
        in page
    )
    assert "3 subscribers." in http.get("/subscribers").text
    exported = http.get("/subscribers/export.csv?q=example.vn&list=newsletter")
    assert exported.status_code == 200 and "content-length" not in exported.headers  # streamed
    assert exported.content.startswith(b"\xef\xbb\xbfemail,")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["email"] for r in rows] == ["an.nguyen@example.vn"]
    thai = http.get("/subscribers/export.csv?q=somchai").content.decode("utf-8-sig")
    assert "สมชาย ใจดี" in thai
    everyone = http.get("/subscribers/export.csv").content.decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(everyone)))) == 3
    unknown = http.get("/subscribers/export.csv?partner=Nobody")
    assert unknown.status_code == 404 and "no partner" in unknown.text


def test_lists_and_partners_pages_are_compact_and_well_formed(root: Root) -> None:
    _, http, _ = _admin(root)
    with root.sessions.begin() as session:
        for n in range(24):
            partner_store.add_partner(session, f"Partner organisation number {n}", "VN")
    partners = http.get("/partners")
    assert len(partners.content) < 40_000, len(partners.content)  # was 257 KB
    assert partners.text.count("<thead>") == 1 and partners.text.count("<select") == 1
    assert partners.text.count(">Edit</a>") == 24
    with root.sessions() as session:
        first = partner_store.list_partners(session)[0].id
    editing = http.get(f"/partners?edit={first}").text
    assert editing.count("<select") == 2 and 'form="edit-partner"' in editing
    assert http.get("/partners?edit=999999").status_code == 404

    lists = http.get("/lists").text
    # A pattern Chromium compiles with the `v` flag: a literal '-' in a class is escaped.
    assert 'pattern="[a-z0-9][a-z0-9\\-]*"' in lists
    # The slug has its own column, not between the "Name" label and its field.
    assert "<td><code>newsletter</code>" in lists
    assert 'aria-label="Name of newsletter"' in lists
