"""Two-factor sign-in and password reset over HTTP: the half-signed-in state, throttling,
the admin requirement, an admin's reset, `mailer user reset-2fa`, reset requests.

The same flows in real Chromium, with mail through a real SMTP server, are in
tests/test_web_twofactor_browser.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from typer.testing import CliRunner

from mailer.cli.main import app as cli
from mailer.compose import Root, build
from mailer.people import resets, twofactor, websessions
from mailer.people.accounts import Accounts, ThrottlePolicy, get_user
from mailer.web.app import create_app
from tests.conftest import make_settings
from tests.web_harness import FAST_HASHER, PASSWORD, add_user, client, csrf_of, login, make_app

SECRET = re.compile(r'<code class="secret" id="secret">([A-Z2-7 ]+)</code>')
RECOVERY = re.compile(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>")


def step_now() -> int:
    return int(time.time()) // 30


def enrol(http: TestClient) -> tuple[pyotp.TOTP, int, list[str]]:
    """Enrol the signed-in user as a person would: read the key, type the app's code."""
    page = http.get("/account/2fa")
    assert page.status_code == 200, page.text
    match = SECRET.search(page.text)
    assert match, "no key on the enrolment page"
    totp = pyotp.TOTP(match.group(1).replace(" ", ""))
    step = step_now()
    done = http.post(
        "/account/2fa", data={"code": totp.generate_otp(step), "csrf_token": csrf_of(page.text)}
    )
    assert done.status_code == 200, done.text
    codes = RECOVERY.findall(done.text)
    assert len(codes) == 10
    return totp, step, codes


def password_step(app: FastAPI, email: str, password: str = PASSWORD) -> TestClient:
    """A client past the password, at the code form."""
    http = client(app)
    page = http.get("/login")
    response = http.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303 and response.headers["location"] == "/login/code"
    return http


def send_code(http: TestClient, code: str) -> Response:
    page = http.get("/login/code")
    assert page.status_code == 200, page.text
    return http.post("/login/code", data={"code": code, "csrf_token": csrf_of(page.text)})


def wrong_code(totp: pyotp.TOTP) -> str:
    step = step_now()
    valid = {totp.generate_otp(s) for s in range(step - 2, step + 3)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


def test_enrolment_then_sign_in_with_a_code_once(root: Root) -> None:
    app = make_app(root)
    add_user(app, "ed@example.org", "editor")
    http, token = login(app, "ed@example.org")
    account = http.get("/account")
    assert "Set up two-factor sign-in" in account.text
    page = http.get("/account/2fa")
    bad = http.post("/account/2fa", data={"code": "12345", "csrf_token": csrf_of(page.text)})
    assert bad.status_code == 400 and "not the one the app shows" in bad.text
    assert SECRET.search(bad.text).group(1) == SECRET.search(page.text).group(1)  # type: ignore[union-attr]
    totp, step, codes = enrol(http)
    account = http.get("/account")
    assert "10 unused recovery codes left" in account.text
    assert http.get("/account/2fa").headers["location"] == "/account"

    # half signed in: nothing but the code form, and the code step only
    half = password_step(app, "ed@example.org")
    assert half.get("/issues").headers["location"].startswith("/login?next=")
    assert half.get("/account").headers["location"].startswith("/login?next=")
    refused = send_code(half, wrong_code(totp))
    assert refused.status_code == 200 and "not right" in refused.text
    used = send_code(half, totp.generate_otp(step))  # the code that turned it on
    assert used.status_code == 200 and "used already" in used.text
    code = totp.generate_otp(step_now() + 1)
    signed_in = send_code(half, code)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    assert half.get("/issues").status_code == 200

    again = password_step(app, "ed@example.org")
    assert "not right, or it was used already" in send_code(again, code).text
    assert again.get("/issues").status_code == 303
    first = send_code(again, codes[0].upper().replace("-", " "))
    assert first.status_code == 303
    assert "9 left" in again.get("/issues").text

    third = password_step(app, "ed@example.org")
    assert "not right" in send_code(third, codes[0]).text  # a recovery code works once
    assert send_code(third, codes[1]).status_code == 303
    del token


def test_the_code_step_expires_and_needs_the_same_password(root: Root) -> None:
    app = make_app(root)
    add_user(app, "ed@example.org", "editor")
    http, _ = login(app, "ed@example.org")
    totp, _, _ = enrol(http)
    half = password_step(app, "ed@example.org")
    with root.sessions.begin() as session:  # the password changes meanwhile
        app.state.web.accounts.set_password(session, "ed@example.org", "another long password")
    gone = half.get("/login/code")
    assert gone.status_code == 303 and gone.headers["location"] == "/login"
    assert "Sign in again" in half.get("/login").text
    del totp


def test_wrong_codes_are_throttled_like_passwords(root: Root) -> None:
    policy = ThrottlePolicy(free_per_account=3, free_per_ip=50)
    app = create_app(root, accounts=Accounts(FAST_HASHER, policy=policy))
    add_user(app, "ed@example.org", "editor")
    http, _ = login(app, "ed@example.org")
    totp, _, codes = enrol(http)
    half = password_step(app, "ed@example.org")
    for _ in range(2):
        assert "not right" in send_code(half, wrong_code(totp)).text
    # the right password again does not wipe out the wrong codes before it
    half = password_step(app, "ed@example.org")
    assert "not right" in send_code(half, wrong_code(totp)).text  # the third: blocked now
    blocked = send_code(half, totp.generate_otp(step_now() + 1))
    assert blocked.status_code == 429 and "too many failed logins" in blocked.text.lower()
    assert int(blocked.headers["Retry-After"]) > 0
    assert send_code(half, codes[0]).status_code == 429  # recovery codes wait too
    with root.sessions() as session:
        assert twofactor.recovery_codes_left(session, get_user(session, "ed@example.org").id) == 10


def test_admins_must_enrol_first_when_the_setting_says_so(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, require_2fa_for_admins=True)
    root = build(settings)
    try:
        app = make_app(root)
        add_user(app, "admin@example.org", "admin")
        add_user(app, "ed@example.org", "editor")
        editor, _ = login(app, "ed@example.org")
        assert editor.get("/issues").status_code == 200  # editors may choose
        admin = client(app)
        signed = admin.post(
            "/login",
            data={
                "email": "admin@example.org",
                "password": PASSWORD,
                "csrf_token": csrf_of(admin.get("/login").text),
            },
        )
        assert signed.status_code == 303  # the password is enough to sign in ...
        for path in ("/issues", "/users", "/account", "/subscribers"):
            response = admin.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/account/2fa"
        page = admin.get("/account/2fa")  # ... and to reach only this page
        assert "Admins must sign in with a second factor" in page.text
        posted = admin.post(
            "/partners", data={"name": "X", "country": "LA", "csrf_token": csrf_of(page.text)}
        )
        assert posted.status_code == 403 and "two-factor" in posted.text
        enrol(admin)
        assert admin.get("/users").status_code == 200
        account = admin.get("/account")
        assert "Turn off two-factor sign-in" not in account.text
        off = admin.post(
            "/account/2fa/off", data={"code": "000000", "csrf_token": csrf_of(account.text)}
        )
        assert off.status_code == 303
        with root.sessions() as session:
            assert twofactor.is_enabled(session, get_user(session, "admin@example.org").id)
    finally:
        root.close()


def test_an_admin_resets_another_users_second_factor(root: Root) -> None:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    add_user(app, "ed@example.org", "editor")
    ed, _ = login(app, "ed@example.org")
    enrol(ed)
    admin, token = login(app, "admin@example.org")
    with root.sessions() as session:
        ed_id = get_user(session, "ed@example.org").id
    asked = admin.post(f"/users/{ed_id}/2fa/reset", data={"csrf_token": token})
    assert asked.status_code == 200
    assert "Reset two-factor sign-in for ed@example.org?" in asked.text
    assert "10 unused recovery codes stop working" in asked.text
    assert "1 open session end" in asked.text
    with root.sessions() as session:
        assert twofactor.is_enabled(session, ed_id)  # asking changed nothing
    done = admin.post(f"/users/{ed_id}/2fa/reset", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    assert "Two-factor sign-in reset for ed@example.org" in admin.get("/users").text
    with root.sessions() as session:
        assert not twofactor.is_enabled(session, ed_id)
        assert websessions.count(session, ed_id) == 0
    assert ed.get("/issues").status_code == 303  # signed out
    login(app, "ed@example.org")  # the password alone again


def test_mailer_user_reset_2fa(root: Root, database_url: str, tmp_path: Path, monkeypatch) -> None:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    http, _ = login(app, "admin@example.org")
    enrol(http)
    monkeypatch.chdir(tmp_path)
    env = {"MAILER_DATABASE_URL": database_url, "MAILER_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["user", "reset-2fa", "Admin@example.org"], env=env)
    assert result.exit_code == 0, result.output
    assert "two-factor sign-in reset for admin@example.org; 1 session(s) ended" in result.stdout
    with root.sessions() as session:
        assert not twofactor.is_enabled(session, get_user(session, "admin@example.org").id)
    assert http.get("/issues").status_code == 303
    login(app, "admin@example.org")
    again = CliRunner().invoke(cli, ["user", "reset-2fa", "admin@example.org"], env=env)
    assert again.exit_code == 0 and "had no two-factor sign-in; nothing changed" in again.stdout
    unknown = CliRunner().invoke(cli, ["user", "reset-2fa", "nobody@example.org"], env=env)
    assert (
        unknown.exit_code == 1 and "no user with the address nobody@example.org" in unknown.stderr
    )
    common = CliRunner().invoke(
        cli,
        ["user", "set-password", "admin@example.org", "--password-stdin"],
        input="qwertyuiop\n",
        env=env,
    )
    assert common.exit_code == 1 and "most common" in common.stderr


def forgot(http: TestClient, email: str) -> Response:
    page = http.get("/login/forgot")
    return http.post("/login/forgot", data={"email": email, "csrf_token": csrf_of(page.text)})


def test_reset_requests_are_throttled_per_address_and_answer_the_same(root: Root) -> None:
    app = make_app(root)
    add_user(app, "ed@example.org", "editor")
    http = client(app)
    assert "Forgot password?" in http.get("/login").text
    known = forgot(http, "ed@example.org")
    unknown = forgot(http, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    # the same page, but for the address typed (same session: same CSRF token)
    assert known.text.replace("ed@example.org", "X") == unknown.text.replace(
        "nobody@example.org", "X"
    )
    bad = forgot(http, "not an address")
    assert (
        bad.status_code == 400 and "email address: this is not an email address" in bad.text.lower()
    )
    for _ in range(2):
        assert forgot(http, "ed@example.org").status_code == 200
    for address in ("ed@example.org", "nobody@example.org"):
        if address == "nobody@example.org":
            for _ in range(2):
                assert forgot(http, address).status_code == 200
        blocked = forgot(http, address)
        assert (
            blocked.status_code == 429
            and "too many password reset requests" in blocked.text.lower()
        )
    with root.sessions() as session:
        user = get_user(session, "ed@example.org")
        rows = session.query(resets.PasswordReset).filter_by(user_id=user.id).count()
    assert rows == 3  # the blocked request made no link


def test_reset_link_rules(root: Root) -> None:
    app = make_app(root)
    add_user(app, "ed@example.org", "editor")
    with root.sessions.begin() as session:
        token = resets.issue(session, get_user(session, "ed@example.org").id, 1800)
    http = client(app)
    form = http.get(f"/login/reset/{token}")
    assert form.status_code == 200 and "Choose a new password" in form.text
    common = http.post(
        f"/login/reset/{token}",
        data={"new": "1234567890", "confirm": "1234567890", "csrf_token": csrf_of(form.text)},
    )
    assert common.status_code == 400 and "most common" in common.text
    differ = http.post(
        f"/login/reset/{token}",
        data={"new": "a new long password", "confirm": "another", "csrf_token": csrf_of(form.text)},
    )
    assert differ.status_code == 400 and "differ" in differ.text
    assert http.get(f"/login/reset/{token}x").status_code == 400  # altered
