"""X-Forwarded-For is believed only from `MAILER_TRUSTED_PROXIES`: a real uvicorn server
(`mailer web` and `mailer serve`, subprocesses on loopback) and the login throttle.

uvicorn trusts 127.0.0.1 by default, so a local client could name a new address with
every guess and never reach the per-address block. Readiness is a poll of /healthz;
nothing here depends on how fast a process starts or answers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailer.people.accounts import LoginFailure
from mailer.serve import proxy_options
from mailer.settings import load_settings
from tests.smtpd import free_port

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebProcess:
    """`mailer <command>` on a free loopback port, stopped with SIGTERM afterwards."""

    def __init__(self, tmp_path: Path, database_url: str, command: str, trusted: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "MAILER_DATABASE_URL": database_url,
            "MAILER_DATA_DIR": str(tmp_path / "data"),
            "MAILER_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "MAILER_SMTP_PORT": str(free_port()),  # `serve`'s worker has nothing to send
            "MAILER_TRUSTED_PROXIES": trusted,
            "FORWARDED_ALLOW_IPS": "*",  # uvicorn's own variable must not matter
        }
        env.pop("MAILER_PUBLIC_BASE_URL", None)
        cli = [sys.executable, "-c", "from mailer.cli.main import main; main()"]
        self.process = subprocess.Popen(
            [*cli, command, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=tmp_path,  # no .env here
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server ended: {self.process.communicate()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("gave up waiting for the web app to answer")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=60)
                return
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.communicate(timeout=30)


@pytest.fixture
def start(tmp_path: Path, database_url: str) -> Iterator[object]:
    started: list[WebProcess] = []

    def run(command: str, trusted: str = "") -> WebProcess:
        web = WebProcess(tmp_path, database_url, command, trusted)
        started.append(web)
        web.wait_ready()
        return web

    yield run
    for web in started:
        web.stop()


def _failed_login(http: httpx.Client, email: str, forwarded_for: str) -> httpx.Response:
    token = CSRF.search(http.get("/login").text)
    assert token, "no CSRF field on the login page"
    return http.post(
        "/login",
        data={"email": email, "password": "a wrong guess", "csrf_token": token.group(1)},
        headers={"X-Forwarded-For": forwarded_for},
    )


def _ip_failures(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        rows = session.scalars(select(LoginFailure).where(LoginFailure.key.like("ip:%")))
        return {row.key: row.failures for row in rows}


@pytest.mark.parametrize("command", ["web", "serve"])
def test_forwarded_for_from_loopback_does_not_escape_the_login_throttle(
    start, sessions: sessionmaker[Session], command: str
) -> None:
    web = start(command)
    with httpx.Client(base_url=web.base, timeout=60) as http:
        for n in range(3):
            response = _failed_login(http, f"guess{n}@example.org", f"203.0.113.{n + 1}")
            assert response.status_code == 200 and "Wrong email address or password" in (
                response.text
            )
        assert _ip_failures(sessions) == {"ip:127.0.0.1": 3}  # the real client, every time
        # One guess short of the block (20 from one address), then the block holds
        # whatever address the header claims.
        with sessions.begin() as session:
            session.get_one(LoginFailure, "ip:127.0.0.1").failures = 19
            session.get_one(LoginFailure, "ip:127.0.0.1").last_failure_at = datetime.now(UTC)
        _failed_login(http, "guess3@example.org", "203.0.113.4")
        blocked = _failed_login(http, "guess4@example.org", "198.51.100.77")
        assert blocked.status_code == 429
        assert "Too many failed logins" in blocked.text
    assert set(_ip_failures(sessions)) == {"ip:127.0.0.1"}


def test_a_configured_proxy_is_believed(start, sessions: sessionmaker[Session]) -> None:
    web = start("web", trusted="127.0.0.1")
    with httpx.Client(base_url=web.base, timeout=60) as http:
        _failed_login(http, "guess@example.org", "203.0.113.9")
    assert _ip_failures(sessions) == {"ip:203.0.113.9": 1}


def test_trusted_proxies_setting_is_checked_and_off_by_default() -> None:
    assert proxy_options(load_settings(env_file=None)) == {"proxy_headers": False}
    configured = load_settings(env_file=None, trusted_proxies=" 10.1.2.3/8, ::1 ,127.0.0.1")
    assert proxy_options(configured) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.0/8,::1,127.0.0.1",
    }
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        load_settings(env_file=None, trusted_proxies="127.0.0.1,proxy.example")
    with pytest.raises(ValueError, match=r"'\*' is not an IP address or network"):
        load_settings(env_file=None, trusted_proxies="*")
