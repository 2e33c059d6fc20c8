"""Acceptance review of the web app: hostile or clumsy input gets a page, never a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mailer.compose import Root
from mailer.people import accounts
from mailer.web.forms import MAX_PAGE
from tests.web_harness import (
    PASSWORD,
    add_user,
    client,
    csrf_of,
    free_socket,
    login,
    make_app,
    serve,
)

HUGE = "9" * 25  # beyond any database integer


def _quiet(http: TestClient) -> TestClient:
    """Server errors come back as 500 responses instead of raising in the test."""
    transport: Any = http._transport  # Starlette's test transport (typed as httpx's base)
    transport.raise_server_exceptions = False
    return http


@pytest.fixture()
def admin(root: Root) -> tuple[TestClient, str]:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    http, token = login(app, "admin@example.org")
    return _quiet(http), token


@pytest.mark.parametrize(
    "path",
    [
        f"/subscribers/{HUGE}",
        f"/campaigns/{HUGE}",
        f"/campaigns/{HUGE}/failures.csv",
    ],
)
def test_ids_and_pages_beyond_the_database_are_not_found(
    admin: tuple[TestClient, str], path: str
) -> None:
    http, _ = admin
    response = http.get(path)
    assert response.status_code == 404, response.text[:300]


@pytest.mark.parametrize("path", ["/subscribers", "/suppression"])
def test_a_page_number_beyond_the_database_is_clamped_to_the_last_allowed_page(
    admin: tuple[TestClient, str], path: str
) -> None:
    """A listing is not a missing thing: a huge page number shows the last page the
    databases' OFFSET allows, empty, with a way back and no way on."""
    http, _ = admin
    response = http.get(f"{path}?page={HUGE}")
    assert response.status_code == 200, response.text[:300]
    assert f'page={MAX_PAGE - 1}">Previous</a>' in response.text
    assert f"page={MAX_PAGE + 1}" not in response.text and ">Next</a>" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        f"/partners/{HUGE}",
        f"/partners/{HUGE}/delete",
        f"/subscribers/{HUGE}/unsubscribe",
        f"/users/{HUGE}/delete",
        f"/campaigns/{HUGE}/pause",
        f"/campaigns/{HUGE}/send",
    ],
)
def test_posts_to_ids_beyond_the_database_are_not_found(
    admin: tuple[TestClient, str], path: str
) -> None:
    http, token = admin
    response = http.post(path, data={"csrf_token": token, "name": "x", "email": "a@example.org"})
    assert response.status_code == 404, response.text[:300]


def test_a_huge_public_view_id_is_not_found(root: Root) -> None:
    response = _quiet(client(make_app(root))).get(f"/view/{HUGE}")
    assert response.status_code == 404


def test_export_with_an_unknown_status_says_so(admin: tuple[TestClient, str]) -> None:
    http, _ = admin
    response = http.get("/subscribers/export.csv?status=bogus")
    assert response.status_code == 400
    assert "bogus" in response.text


def test_a_huge_login_address_is_a_failed_login(root: Root) -> None:
    http = _quiet(client(make_app(root)))
    token = csrf_of(http.get("/login").text)
    response = http.post(
        "/login", data={"email": "a" * 5000 + "@example.org", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 200
    assert "csrf_token" in response.text  # the login form again, with its error


def test_missing_or_mistyped_fields_get_a_page_naming_the_field(
    admin: tuple[TestClient, str],
) -> None:
    http, token = admin
    missing = http.post("/subscribers", data={"csrf_token": token})
    assert missing.status_code == 400
    assert "text/html" in missing.headers["content-type"]
    assert "email" in missing.text
    mistyped = http.get("/subscribers?page=abc")
    assert mistyped.status_code == 400
    assert "page" in mistyped.text


def test_parallel_wrong_logins_cannot_outrun_the_throttle(root: Root) -> None:
    """Twelve guesses fired at once: only the free five are checked, the rest refused."""
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")

    def guess(_: int) -> int:
        with httpx.Client(base_url=base) as http:
            page = http.get("/login")  # the cookie is Secure (https public URL): pass it by hand
            cookie = page.headers["set-cookie"].split(";", 1)[0]
            form = {"email": "admin@example.org", "password": "wrong guess!"}
            form["csrf_token"] = csrf_of(page.text)
            return http.post("/login", data=form, headers={"cookie": cookie}).status_code

    with serve(app, free_socket()) as base, ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(guess, range(12)))
    assert statuses == [200] * 5 + [429] * 7


def test_big_bodies_are_refused_before_they_are_read(root: Root) -> None:
    """Nobody may make the server spool megabytes: not a visitor, not past a form's need."""
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    anonymous = _quiet(client(app))
    blob = b"x" * 3_000_000
    assert anonymous.post("/unsubscribe/1.abc", content=blob).status_code == 413
    assert anonymous.post("/login", content=blob).status_code == 413
    upload = anonymous.post("/issues/upload", files={"file": ("a.yaml", blob)})
    assert upload.status_code == 413
    http, token = login(app, "admin@example.org")
    big_issue = http.post(
        "/issues/upload", data={"csrf_token": token}, files={"file": ("a.yaml", blob)}
    )
    assert big_issue.status_code == 413
    # An import may be large (up to 50 MB); a content file just over 1 MB is told so by name.
    csv = b"email\n" + b"someone@example.org\n" * 100_000
    imported = http.post(
        "/subscribers/import",
        data={"csrf_token": token, "dry_run": "true"},
        files={"file": ("big.csv", csv)},
    )
    assert imported.status_code == 200
    near = http.post(
        "/issues/upload", data={"csrf_token": token}, files={"file": ("a.yaml", b"x" * 1_000_100)}
    )
    assert near.status_code == 200 and "larger than 1 MB" in near.text


def test_guessing_the_current_password_on_the_account_page_is_throttled(root: Root) -> None:
    """A session left open must not become an unthrottled password oracle."""
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    http, token = login(app, "editor@example.org")
    form = {"csrf_token": token, "new": "a new long password", "confirm": "a new long password"}
    for guess in range(5):
        wrong = http.post("/account/password", data={**form, "current": f"guess {guess}"})
        assert "The current password is not right" in wrong.text
    right = http.post("/account/password", data={**form, "current": PASSWORD})
    assert "Too many failed logins" in right.text
    assert right.status_code == 200
    with root.sessions() as session:  # not changed while blocked
        user = accounts.get_user(session, "editor@example.org")
        assert app.state.web.accounts.verify(user, PASSWORD)
