"""Campaign pages over HTTP against a real SMTP server: the recipient count before
creating, failures with their SMTP replies, pause/resume/cancel, the web copy, the
archive's Atom feed, and a forged schedule refused; SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailer.compose import Root, build
from mailer.delivery.campaigns import Campaign
from mailer.schedule.runner import WaveRunner
from mailer.schedule.waves import CampaignWave
from subscribers import mailing_lists, repository
from subscribers import partners as partner_store
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401 - the fixture
from tests.web_harness import add_user, login, make_app

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def web_root(
    database_url: str,
    tmp_path: Path,
    smtp_server: SMTPTestServer,  # noqa: F811
) -> Root:
    root = build(
        make_settings(
            tmp_path,
            database_url=database_url,
            issues_dir=REPO / "examples" / "issues",
            smtp_port=smtp_server.port,
        )
    )
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter", public=True)  # archived
        partner_store.add_partner(session, "Mekong River Commission", "LA")
        for email, name, country in (
            ("somchai@example.th", "สมชาย ใจดี", "TH"),
            ("linh@example.vn", "Nguyễn Thị Linh", "VN"),
            ("nosuch@example.la", "Khamla", "LA"),
        ):
            repository.add_subscriber(
                session,
                email,
                name=name,
                country=country,
                partner="Mekong River Commission" if country == "LA" else None,
                lists=["newsletter"],
            )
    return root


def _editor(root: Root) -> tuple[FastAPI, TestClient, str]:
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    http, token = login(app, "editor@example.org")
    return app, http, token


def _create(http: TestClient, token: str) -> int:
    response = http.post(
        "/campaigns",
        data={"csrf_token": token, "issue": "2022-13", "lists": ["newsletter"], "name": "Test"},
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def _run_worker(root: Root) -> None:
    worker = root.worker()
    worker.run(threading.Event(), until_idle=True)


def test_count_then_send_shows_failures_with_their_smtp_reply(
    web_root: Root,
    smtp_server: SMTPTestServer,  # noqa: F811
) -> None:
    app, http, token = _editor(web_root)
    counted = http.post(
        "/campaigns/new",
        data={"csrf_token": token, "issue": "2022-13", "countries": ["VN", "LA"]},
    )
    assert "Recipients: 2" in counted.text
    with web_root.sessions() as session:
        assert session.scalars(select(Campaign)).all() == []  # counting creates nothing

    campaign_id = _create(http, token)
    issue_page = http.get("/issues/2022-13").text
    assert f'href="/campaigns/{campaign_id}">Test</a>' in issue_page
    draft = http.get(f"/campaigns/{campaign_id}").text
    assert "draft" in draft and "Send now" in draft
    assert http.get(f"/view/{campaign_id}").status_code == 404  # not published yet
    assert "Public archive: published once it goes out" in draft
    with web_root.sessions.begin() as session:
        mailing_lists.update_list(session, "newsletter", public=False)
    private = http.get(f"/campaigns/{campaign_id}").text
    assert "Public archive: not published (its audience includes a private list" in private
    with web_root.sessions.begin() as session:
        mailing_lists.update_list(session, "newsletter", public=True)

    smtp_server.reject("nosuch@example.la", "550 5.1.1 <nosuch@example.la>: no such user")
    sent = http.post(f"/campaigns/{campaign_id}/send", data={"csrf_token": token})
    assert sent.status_code == 303
    _run_worker(web_root)
    page = http.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-state">sent<' in page
    assert "550 5.1.1 &lt;nosuch@example.la&gt;: no such user" in page
    assert 'id="count-sent">2<' in page
    assert "Mekong River Commission" in page and "<svg" in page
    assert smtp_server.count() == 2

    failures = http.get(f"/campaigns/{campaign_id}/failures.csv")
    assert failures.headers["content-type"].startswith("text/csv")
    lines = failures.text.strip().splitlines()
    assert lines[0] == "email,name,country,attempts,last_reply"
    assert len(lines) == 2 and lines[1].startswith("nosuch@example.la,Khamla,LA,1,550 5.1.1")

    add_user(app, "admin@example.org", "admin")
    admin, _ = login(app, "admin@example.org")
    with web_root.sessions() as session:
        linh = repository.get_subscriber(session, "linh@example.vn").id
    person = admin.get(f"/subscribers/{linh}").text
    assert f'href="/campaigns/{campaign_id}">Test</a>' in person and ">sent</span>" in person

    view = http.get(f"/view/{campaign_id}")
    assert view.status_code == 200 and "%%" not in view.text
    assert "somchai" not in view.text and "linh@" not in view.text
    assert "style-src 'unsafe-inline'" in view.headers["content-security-policy"]

    feed = ET.fromstring(http.get("/archive/feed.atom").content)  # noqa: S314 - our own output
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    assert entries[0].findtext(f"{ATOM}id") == f"https://news.example.org/view/{campaign_id}"


def test_pause_resume_cancel_and_bad_schedules(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    campaign_id = _create(http, token)
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for data, expected in (
        ({"at": past, "tz": "Asia/Shanghai"}, "in the past"),
        ({"at": "tomorrow morning", "tz": "UTC"}, "cannot read the time"),
        ({"at": "2030-01-01T09:00", "tz": "Mars/Olympus"}, "Mars/Olympus"),
    ):
        http.post(f"/campaigns/{campaign_id}/schedule", data={"csrf_token": token, **data})
        assert expected in http.get(f"/campaigns/{campaign_id}").text, expected

    local = http.post(
        f"/campaigns/{campaign_id}/schedule",
        data={"csrf_token": token, "at": "2030-01-01T09:00", "mode": "local"},
    )
    assert local.status_code == 303
    page = http.get(f"/campaigns/{campaign_id}").text
    assert "Scheduled in 3 waves" in page
    for zone, utc in (
        ("Asia/Bangkok", "2030-01-01 02:00"),
        ("Asia/Ho_Chi_Minh", "2030-01-01 02:00"),
        ("Asia/Vientiane", "2030-01-01 02:00"),
    ):
        assert zone in page and utc in page

    http.post(f"/campaigns/{campaign_id}/unschedule", data={"csrf_token": token})
    http.post(f"/campaigns/{campaign_id}/send", data={"csrf_token": token})
    http.post(f"/campaigns/{campaign_id}/pause", data={"csrf_token": token})
    assert 'id="campaign-state">paused<' in http.get(f"/campaigns/{campaign_id}").text
    http.post(f"/campaigns/{campaign_id}/resume", data={"csrf_token": token})
    assert 'id="campaign-state">sending<' in http.get(f"/campaigns/{campaign_id}").text
    http.post(f"/campaigns/{campaign_id}/cancel", data={"csrf_token": token, "confirm": "yes"})
    page = http.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-state">cancelled<' in page
    # Whoever got it before the cancel can still open the web copy; the archive skips it.
    assert http.get(f"/view/{campaign_id}").status_code == 200
    assert f"/view/{campaign_id}" not in http.get("/archive").text
    never_sent = _create(http, token)
    http.post(f"/campaigns/{never_sent}/cancel", data={"csrf_token": token, "confirm": "yes"})
    assert http.get(f"/view/{never_sent}").status_code == 404
    http.post(f"/campaigns/{campaign_id}/resume", data={"csrf_token": token})
    assert "cannot become sending" in http.get(f"/campaigns/{campaign_id}").text


def _waves(root: Root, campaign_id: int) -> list[CampaignWave]:
    with root.sessions() as session:
        return list(
            session.scalars(
                select(CampaignWave)
                .where(CampaignWave.campaign_id == campaign_id)
                .order_by(CampaignWave.starts_at, CampaignWave.timezone)
            )
        )


def _fire(root: Root, wave: CampaignWave) -> None:
    """Start a wave as the scheduler does at its time (the clock set to its start)."""
    runner = WaveRunner(root.sessions, default_grace_seconds=3600, clock=lambda: wave.starts_at)
    assert runner.fire(wave.id) == "started"


def test_local_time_progress_counts_later_waves_and_cancel_settles_them(web_root: Root) -> None:
    """Issue 11 item 15: after the first wave "1 sent of 1, 0 waiting" hid the people of
    the later waves; after Cancel the waves still said pending and the list said finished."""
    _, http, token = _editor(web_root)
    campaign_id = _create(http, token)
    http.post(
        f"/campaigns/{campaign_id}/schedule",
        data={"csrf_token": token, "at": "2030-01-01T09:00", "mode": "local"},
    )
    waves = _waves(web_root, campaign_id)
    assert [w.recipients for w in waves] == [1, 1, 1]
    _fire(web_root, waves[0])
    _run_worker(web_root)

    page = http.get(f"/campaigns/{campaign_id}").text
    assert 'id="count-sent">1<' in page
    assert 'id="count-total">3<' in page  # the whole planned audience, not the ledger's 1
    assert 'id="count-later">2<' in page
    listing = http.get("/campaigns").text
    assert "1 / 3" in listing

    answer = http.post(
        f"/campaigns/{campaign_id}/cancel", data={"csrf_token": token, "confirm": "yes"}
    )
    assert answer.status_code == 303
    page = http.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-state">cancelled<' in page
    assert [w.status for w in _waves(web_root, campaign_id)] == [
        "started",
        "cancelled",
        "cancelled",
    ]
    assert "badge-pending" not in page
    assert 'id="count-total">3<' in page and 'id="count-not-sent">2<' in page
    assert 'id="count-later"' not in page and 'id="count-waiting"' not in page
    listing = http.get("/campaigns").text
    assert "finished" not in listing
    assert "1 / 3" in listing and "(2 cancelled)" in listing and "cancelled 20" in listing


def test_scheduled_campaign_shows_local_dates_and_can_be_paused(web_root: Root) -> None:
    """Item 18: 17:55 UTC on 1 December is 01:55 on 2 December in Shanghai (the default
    editors' zone): the date is shown with every local time; a scheduled campaign pauses."""
    _, http, token = _editor(web_root)
    campaign_id = _create(http, token)
    http.post(
        f"/campaigns/{campaign_id}/schedule",
        data={"csrf_token": token, "at": "2030-12-01T17:55", "tz": "UTC"},
    )
    page = http.get(f"/campaigns/{campaign_id}").text
    assert "Scheduled for 2030-12-01 17:55 UTC (2 Dec 01:55 Asia/Shanghai)" in page
    assert "2 Dec 01:55 Asia/Shanghai</td>" in page  # the wave row too
    assert f'action="/campaigns/{campaign_id}/pause"' in page

    http.post(f"/campaigns/{campaign_id}/pause", data={"csrf_token": token})
    page = http.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-state">paused<' in page
    assert "Paused: a wave that comes due meanwhile queues its recipients" in page
    assert "done." not in page
    http.post(f"/campaigns/{campaign_id}/resume", data={"csrf_token": token})
    page = http.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-state">scheduled<' in page
    assert "Resumed: back to scheduled; its waves start at their times." in page

    http.post(f"/campaigns/{campaign_id}/unschedule", data={"csrf_token": token})
    http.post(
        f"/campaigns/{campaign_id}/schedule",
        data={"csrf_token": token, "at": "2030-12-01T09:00", "mode": "local"},
    )
    page = http.get(f"/campaigns/{campaign_id}").text
    assert "1 Dec 09:00 there" in page  # Bangkok, Hanoi, Vientiane: each wave with its date


def test_draft_page_shows_subject_and_recipients_and_can_be_edited_or_deleted(
    web_root: Root,
) -> None:
    """Item 19: the draft page said "Subject: the issue's title" literally, showed no count,
    and a draft could only be cancelled."""
    _, http, token = _editor(web_root)
    campaign_id = _create(http, token)
    page = http.get(f"/campaigns/{campaign_id}").text
    assert "the issue&#39;s title" not in page and "the issue's title" not in page
    assert 'id="campaign-subject">2022 Second Working-Group Meeting' in page
    assert 'id="campaign-recipients">3<' in page
    assert "Public archive: published once it goes out" in page

    form = http.get(f"/campaigns/{campaign_id}/edit").text
    assert 'value="Test"' in form and 'name="lists" value="newsletter" checked' in form
    assert 'placeholder="2022 Second Working-Group Meeting' in form  # what "empty" means
    bad = http.post(
        f"/campaigns/{campaign_id}/edit",
        data={"csrf_token": token, "name": "Renamed", "subject": "Hi", "countries": ["KH"]},
    )
    assert "Nobody is in this audience" in bad.text
    assert 'value="Renamed"' in bad.text  # what was typed comes back
    saved = http.post(
        f"/campaigns/{campaign_id}/edit",
        data={
            "csrf_token": token,
            "name": "Renamed",
            "subject": "Our news for Thailand",
            "countries": ["TH"],
        },
    )
    assert saved.status_code == 303
    page = http.get(f"/campaigns/{campaign_id}").text
    assert "<h1>Renamed</h1>" in page
    assert 'id="campaign-subject">Our news for Thailand<' in page
    assert 'id="campaign-recipients">1<' in page
    assert "Saved the draft" in page

    asked = http.post(f"/campaigns/{campaign_id}/delete", data={"csrf_token": token})
    assert asked.status_code == 200 and "Delete the draft Renamed?" in asked.text
    deleted = http.post(
        f"/campaigns/{campaign_id}/delete", data={"csrf_token": token, "confirm": "yes"}
    )
    assert deleted.headers["location"] == "/campaigns"
    assert "Deleted the draft campaign “Renamed”" in http.get("/campaigns").text
    assert http.get(f"/campaigns/{campaign_id}").status_code == 404

    sent = _create(http, token)
    http.post(f"/campaigns/{sent}/send", data={"csrf_token": token})
    assert http.get(f"/campaigns/{sent}/edit").status_code == 303
    http.post(f"/campaigns/{sent}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert "only a draft can be deleted" in http.get(f"/campaigns/{sent}").text


def test_archive_line_and_status_follow_the_state(web_root: Root) -> None:
    """Item 20: sent and cancelled campaigns said "published once it goes out"; item 14:
    the status the page polls changes when the campaign does, and says when it is final."""
    _, http, token = _editor(web_root)
    campaign_id = _create(http, token)
    before = http.get(f"/campaigns/{campaign_id}/status.json").json()
    assert before["state"] == "draft" and before["final"] is False
    http.post(f"/campaigns/{campaign_id}/send", data={"csrf_token": token})
    sending = http.get(f"/campaigns/{campaign_id}/status.json").json()
    assert sending["stamp"] != before["stamp"] and sending["state"] == "sending"
    page = http.get(f"/campaigns/{campaign_id}").text
    assert f'data-stamp="{sending["stamp"]}"' in page  # the page and the poll agree
    _run_worker(web_root)
    sent = http.get(f"/campaigns/{campaign_id}/status.json").json()
    assert sent["state"] == "sent" and sent["final"] is True
    page = http.get(f"/campaigns/{campaign_id}").text
    assert "published once it goes out" not in page
    assert f'Public archive: published: <a href="/view/{campaign_id}">web copy</a>' in page
    assert 'data-final="true"' in page
    listing = http.get("/campaigns")  # a campaign sent at once has no waves
    assert listing.status_code == 200 and "3 / 3" in listing.text

    cancelled = _create(http, token)
    http.post(f"/campaigns/{cancelled}/cancel", data={"csrf_token": token, "confirm": "yes"})
    page = http.get(f"/campaigns/{cancelled}").text
    assert "published once it goes out" not in page
    assert "Public archive: not published (cancelled)" in page
    assert "Cancelled: nothing more of it will be sent" in page
