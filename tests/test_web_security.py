"""Security of the web app: sessions, roles, CSRF, unsubscribe tokens, escaping."""

from __future__ import annotations

import math
import time

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select

from mailer.compose import Root
from mailer.delivery import tokens
from mailer.people.accounts import User
from mailer.web import auth, editor, operator, public, twofactor
from subscribers import mailing_lists, repository
from subscribers.models import MailingList, Partner, SubscriberStatus
from tests.web_harness import PASSWORD, add_user, client, csrf_of, login, make_app

PUBLIC = {
    "/login",
    "/login/code",  # the half-signed-in step: without one, it sends back to /login
    "/logout",
    "/unsubscribe",
    "/subscribe",
    "/unsubscribe/{token}",
    "/preferences/{token}",
    "/view/{campaign_id:int}",
    "/archive",
    "/archive/feed.atom",
    "/theme.css",
    "/",
}
XSS = "<img src=x onerror=alert(1)>"


def _app(root: Root) -> FastAPI:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    add_user(app, "editor@example.org", "editor")
    return app


def _concrete(path: str) -> str:
    return (
        path.replace("{subscriber_id:int}", "1")
        .replace("{partner_id:int}", "1")
        .replace("{user_id:int}", "1")
        .replace("{campaign_id:int}", "1")
        .replace("{draft_id:int}", "1")
        .replace("{number:int}", "1")
        .replace("{slug}", "newsletter")
        .replace("{key}", "2022-13")
    )


def _guarded_routes() -> list[tuple[str, str]]:
    routes = []
    for route in [
        *auth.router.routes,
        *public.router.routes,
        *editor.router.routes,
        *operator.router.routes,
        *twofactor.router.routes,
    ]:
        if isinstance(route, APIRoute) and route.path not in PUBLIC:
            for method in sorted(route.methods or ()):
                routes.append((method, _concrete(route.path)))
    return routes


def _admin_routes() -> list[tuple[str, str]]:
    return [
        (method, _concrete(route.path))
        for route in [
            *operator.router.routes,
            *(r for r in twofactor.router.routes if getattr(r, "path", "").startswith("/users")),
        ]
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    ]


def test_every_editor_and_admin_route_needs_a_session(root: Root) -> None:
    app = _app(root)
    routes = _guarded_routes()
    assert len(routes) > 20  # the test sees the real route table
    anonymous = client(app)
    for method, path in routes:
        response = anonymous.request(method, path, data={"csrf_token": "x"})
        if method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next="), path
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code)
    with root.sessions() as session:
        assert session.scalars(select(Partner)).all() == []


def test_an_editor_cannot_reach_admin_pages_or_actions(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "editor@example.org")
    for method, path in _admin_routes():
        response = http.request(method, path, data={"csrf_token": token, "email": "x@example.org"})
        assert response.status_code == 403, (method, path)
    response = http.post(
        "/users",
        data={
            "csrf_token": token,
            "email": "evil@example.org",
            "password": PASSWORD,
            "role": "admin",
        },
    )
    assert response.status_code == 403
    with root.sessions() as session:
        assert [u.email for u in session.scalars(select(User).order_by(User.email))] == [
            "admin@example.org",
            "editor@example.org",
        ]
    assert "Subscribers" not in http.get("/issues").text  # not even in the menu
    assert http.get("/campaigns").status_code == 200


def test_posts_without_the_session_csrf_token_are_refused(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    assert http.post("/partners", data={"name": "No token"}).status_code == 403
    assert http.post("/partners", data={"name": "Bad", "csrf_token": "forged"}).status_code == 403
    _other, other_token = login(app, "editor@example.org")  # another session's token
    assert (
        http.post("/partners", data={"name": "Other", "csrf_token": other_token}).status_code == 403
    )
    with root.sessions() as session:
        assert session.scalars(select(Partner)).all() == []
    ok = http.post("/partners", data={"name": "Good", "country": "LA", "csrf_token": token})
    assert ok.status_code == 303
    with root.sessions() as session:
        assert [p.name for p in session.scalars(select(Partner))] == ["Good"]
    # Logging out needs the token too (no logout by a foreign page).
    assert http.post("/logout").status_code == 403


def test_session_cookie_flags_and_login_rotation(root: Root) -> None:
    app = _app(root)
    http = client(app)
    before = csrf_of(http.get("/login").text)
    response = http.post(
        "/login",
        data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": before},
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert "max-age=28800" in cookie
    after = csrf_of(http.get("/issues").text)
    assert after != before  # the pre-login token is worthless after login


def test_login_failures_slow_down_and_then_block(root: Root) -> None:
    app = _app(root)
    http = client(app)
    token = csrf_of(http.get("/login").text)
    for _ in range(5):
        last_failure = time.monotonic()
        response = http.post(
            "/login",
            data={"email": "admin@example.org", "password": "wrong guess!", "csrf_token": token},
        )
        assert response.status_code == 200  # the form again, with the error
        assert "Wrong email address or password" in response.text
        assert http.get("/issues").status_code == 303  # still not signed in
    blocked = http.post(
        "/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert blocked.status_code == 429
    # The block is 30 s from the fifth failure; on a busy machine some of it has passed.
    waited = math.ceil(time.monotonic() - last_failure)
    assert 30 - waited <= int(blocked.headers["retry-after"]) <= 30
    assert "Too many failed logins" in blocked.text


def test_changing_a_password_ends_the_users_other_sessions(root: Root) -> None:
    app = _app(root)
    old, _ = login(app, "editor@example.org")
    admin, token = login(app, "admin@example.org")
    with root.sessions() as session:
        editor_id = session.scalars(select(User.id).where(User.email == "editor@example.org")).one()
    response = admin.post(
        f"/users/{editor_id}", data={"csrf_token": token, "password": "a brand new password"}
    )
    assert response.status_code == 303
    assert old.get("/issues").status_code == 303  # back to the login form


def test_login_never_redirects_off_site(root: Root) -> None:
    app = _app(root)
    http = client(app)
    token = csrf_of(http.get("/login").text)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = http.post(
            "/login",
            data={
                "email": "admin@example.org",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert response.headers["location"] == "/", target
        http = client(app)
        token = csrf_of(http.get("/login").text)


def _subscriber(root: Root, email: str, name: str = "Somchai") -> int:
    with root.sessions.begin() as session:
        if session.scalars(select(MailingList)).first() is None:
            mailing_lists.add_list(session, "newsletter", "Newsletter")
        return repository.add_subscriber(
            session, email, name=name, country="TH", lists=["newsletter"]
        ).id


def _status(root: Root, subscriber_id: int) -> SubscriberStatus:
    with root.sessions() as session:
        return repository.get_subscriber(session, subscriber_id).status


def test_one_click_unsubscribe_works_with_no_cookies_at_all(root: Root) -> None:
    app = _app(root)
    sid = _subscriber(root, "somchai@example.co.th")
    token = tokens.make_token(root.settings.secret_key.get_secret_value(), sid)
    bare = client(app)
    response = bare.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert not bare.cookies
    assert _status(root, sid) == SubscriberStatus.UNSUBSCRIBED
    # Idempotent: a provider retrying the POST gets the same answer.
    again = bare.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200


def test_a_forged_or_altered_token_is_refused_and_changes_nothing(root: Root) -> None:
    app = _app(root)
    victim = _subscriber(root, "victim@example.org")
    other = _subscriber(root, "other@example.org")
    secret = root.settings.secret_key.get_secret_value()
    good = tokens.make_token(secret, other)
    altered_id = f"{victim}.{good.partition('.')[2]}"  # someone else's signature
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    foreign = tokens.make_token("another secret entirely", victim)
    for bad in (altered_id, flipped, foreign, f"{victim}", "garbage"):
        bare = client(app)
        page = bare.get(f"/unsubscribe/{bad}")
        assert page.status_code == 400 and "not valid" in page.text
        assert "victim@" not in page.text and "v***@" not in page.text
        one_click = bare.post(f"/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 400
        assert bare.get(f"/preferences/{bad}").status_code == 400
    assert _status(root, victim) == SubscriberStatus.ACTIVE
    assert _status(root, other) == SubscriberStatus.ACTIVE


def test_unsubscribe_page_get_changes_nothing_and_confirm_needs_csrf(root: Root) -> None:
    app = _app(root)
    sid = _subscriber(root, "linh@example.vn", "Nguyễn Thị Linh")
    token = tokens.make_token(root.settings.secret_key.get_secret_value(), sid)
    browser = client(app)
    page = browser.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and "l***@example.vn" in page.text
    assert "linh@example.vn" not in page.text  # a forwarded email does not leak the address
    assert _status(root, sid) == SubscriberStatus.ACTIVE  # link scanners change nothing
    assert browser.post(f"/unsubscribe/{token}", data={}).status_code == 403
    assert _status(root, sid) == SubscriberStatus.ACTIVE
    done = browser.post(f"/unsubscribe/{token}", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    assert _status(root, sid) == SubscriberStatus.UNSUBSCRIBED


def test_a_hostile_subscriber_name_is_shown_as_text(root: Root) -> None:
    app = _app(root)
    sid = _subscriber(root, "xss@example.org", XSS)
    http, _ = login(app, "admin@example.org")
    for path in ("/subscribers", f"/subscribers/{sid}", "/subscribers?q=img"):
        html = http.get(path).text
        assert XSS not in html, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, path


def test_health_check_needs_no_login(root: Root) -> None:
    response = client(_app(root)).get("/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


def test_security_headers(root: Root) -> None:
    app = _app(root)
    response = client(app).get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"


def test_media_is_public_but_stays_inside_its_folder(root: Root) -> None:
    app = _app(root)
    media = root.settings.resolved_media_dir
    (media / "ab12cd.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root.settings.data_dir / "secret.txt").write_text("do not serve", encoding="utf-8")
    bare = client(app)
    photo = bare.get("/media/ab12cd.jpg")
    assert photo.status_code == 200 and photo.content.startswith(b"\xff\xd8")
    assert bare.get("/media/missing.jpg").status_code == 404
    for path in ("/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/..%2fsecret.txt"):
        assert "do not serve" not in bare.get(path).text, path


def test_logout_ends_the_session(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    assert http.get("/subscribers").status_code == 200
    assert http.post("/logout", data={"csrf_token": token}).status_code == 303
    assert http.get("/subscribers").status_code == 303


def test_a_copied_session_cookie_stops_working_after_logout(root: Root) -> None:
    """A signed cookie cannot be forged, but a copy of one (a shared computer, a proxy
    log) used to outlive "Sign out": the server now forgets the session itself."""
    app = _app(root)
    http, token = login(app, "admin@example.org")
    thief = client(app)
    thief.cookies.update(http.cookies)
    assert thief.get("/subscribers").status_code == 200  # the copy works while signed in
    assert http.post("/logout", data={"csrf_token": token}).status_code == 303
    assert thief.get("/subscribers").status_code == 303  # and not after
    assert thief.get("/subscribers").headers["location"].startswith("/login")


def test_sign_out_everywhere_else_keeps_only_this_session(root: Root) -> None:
    app = _app(root)
    laptop, _ = login(app, "editor@example.org")
    phone, _ = login(app, "editor@example.org")
    http, token = login(app, "editor@example.org")
    page = http.get("/account")
    assert "3 sessions, this one included" in page.text
    ended = http.post("/account/sessions/end", data={"csrf_token": token}, follow_redirects=True)
    assert "Signed out everywhere else (2 other sessions)" in ended.text
    assert "1 session, this one included" in ended.text
    assert laptop.get("/account").status_code == 303
    assert phone.get("/account").status_code == 303
    assert http.get("/account").status_code == 200
    assert http.post("/account/sessions/end").status_code == 403  # CSRF-protected


def test_removing_a_user_deletes_their_sessions(root: Root) -> None:
    from mailer.people import accounts, websessions

    app = _app(root)
    http, _ = login(app, "editor@example.org")
    with root.sessions.begin() as session:
        user = accounts.get_user(session, "editor@example.org")
        assert websessions.count(session, user.id) == 1
        user_id = user.id
        accounts.remove_user(session, "editor@example.org")
    with root.sessions() as session:
        assert websessions.count(session, user_id) == 0
    assert http.get("/account").status_code == 303


def test_a_user_changes_their_own_password_with_the_current_one(root: Root) -> None:
    app = _app(root)
    other_session, _ = login(app, "editor@example.org")
    http, token = login(app, "editor@example.org")
    wrong = http.post(
        "/account/password",
        data={"csrf_token": token, "current": "not it", "new": "x" * 12, "confirm": "x" * 12},
    )
    assert "The current password is not right" in wrong.text
    differ = http.post(
        "/account/password",
        data={"csrf_token": token, "current": PASSWORD, "new": "y" * 12, "confirm": "z" * 12},
    )
    assert "The two new passwords differ" in differ.text
    changed = http.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": "a new long password",
            "confirm": "a new long password",
        },
    )
    assert changed.status_code == 303
    assert http.get("/issues").status_code == 200  # this session goes on
    assert other_session.get("/issues").status_code == 303  # the other one ended
    login(app, "editor@example.org", "a new long password")


def test_missing_things_are_404_pages_not_server_errors(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    for path in ("/subscribers/99999", "/campaigns/99999", "/issues/no-such-issue", "/nowhere"):
        response = http.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text, path
    assert http.post("/lists/nope/delete", data={"csrf_token": token}).status_code == 404


def test_trailing_slash_redirects_stay_on_this_site_whatever_the_host_header(
    root: Root,
) -> None:
    """`/archive/` redirected to `http://<Host header>/archive`; now every route's other
    spelling redirects to a path on this site (a relative Location) or is not found."""
    app = _app(root)
    http, _ = login(app, "admin@example.org")
    routes = [*app.routes, *auth.router.routes, *public.router.routes]
    routes += [*editor.router.routes, *operator.router.routes]
    paths = {
        _concrete(route.path).replace("{token}", "a-token")
        for route in routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    }
    assert {"/archive", "/issues", "/login"} <= paths
    for path in sorted(paths - {"/"}):
        response = http.get(path + "/", headers={"host": "evil.example"})
        assert response.status_code == 307, path
        assert response.headers["location"] == path, path
    query = http.get("/archive/?page=2", headers={"host": "evil.example"})
    assert query.headers["location"] == "/archive?page=2"
    mount = http.get("/static", headers={"host": "evil.example"})
    assert mount.status_code == 307 and mount.headers["location"] == "/static/"
    assert http.get("/no-such-page/", headers={"host": "evil.example"}).status_code == 404
