"""Operator pages over HTTP: CSV import with its per-line report, export, editing,
erasure, suppression and users, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailer import campaigns
from mailer.accounts import User
from mailer.compose import Root
from mailer.content import load_issue
from mailer.ledger import LedgerRow
from subscribers import repository, suppression
from subscribers.audience import Audience
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
        repository.add_list(session, "newsletter", "Newsletter")
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
    rejected = _upload(http, token, BAD)
    assert rejected.status_code == 200
    assert "nothing was imported" in rejected.text
    assert "people.csv: 2 problems" in rejected.text
    assert "Atlantis" in rejected.text
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


def test_export_edit_erase_and_suppress(root: Root) -> None:
    _, http, token = _admin(root)
    _upload(http, token, GOOD)
    exported = http.get("/subscribers/export.csv?country=VN")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
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

    refused = http.post(f"/subscribers/{an.id}/erase", data={"csrf_token": token, "confirm": "x"})
    assert refused.status_code == 303
    erased = http.post(
        f"/subscribers/{an.id}/erase",
        data={"csrf_token": token, "confirm": "an.nguyen@example.vn"},
    )
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
    assert http.post(f"/users/{editor.id}/delete", data={"csrf_token": token}).status_code == 303
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
            return {x.slug: x.public for x in repository.list_lists(session)}

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
