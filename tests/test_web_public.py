"""Public preference and unsubscribe pages over HTTP (no login): each subscriber sees and
changes only their own subscription, and the pages say nothing about anyone else."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mailer import tokens
from mailer.compose import Root
from subscribers import privacy, repository
from subscribers.models import SubscriberStatus
from tests.web_harness import client, csrf_of, make_app


def _setup(root: Root) -> tuple[TestClient, dict[str, int]]:
    with root.sessions.begin() as session:
        repository.add_list(session, "newsletter", "LMEC Newsletter", "Every issue")
        repository.add_list(session, "partners-only", "Partners only", "Invitations")
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
        f"/preferences/{token}",
        data={"csrf_token": csrf_of(page.text), "lists": ["newsletter", "partners-only", "x"]},
    )
    assert saved.headers["location"].endswith("?saved=1")
    assert _active_lists(root, ids["sokha"]) == {"newsletter", "partners-only"}
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
