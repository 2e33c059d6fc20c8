"""Shared helpers for the web app's tests: the app with a fast password hasher, users,
a logged-in HTTP client, a live uvicorn server in a thread, and Chromium via Playwright.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mailer.compose import Root
from mailer.people.accounts import Accounts
from mailer.web.app import create_app

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "a long test password"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def make_app(root: Root) -> FastAPI:
    return create_app(root, accounts=Accounts(FAST_HASHER))


def add_user(app: FastAPI, email: str, role: str, password: str = PASSWORD) -> None:
    context = app.state.web
    with context.root.sessions.begin() as session:
        context.accounts.create_user(session, email, password, role=role, name=email.split("@")[0])


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def client(app: FastAPI) -> TestClient:
    """A client on the public URL's scheme, so Secure cookies are kept."""
    base = app.state.web.root.settings.public_base_url
    return TestClient(app, base_url=base, follow_redirects=False)


def login(app: FastAPI, email: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A client signed in as `email`, and the session's CSRF token."""
    http = client(app)
    page = http.get("/login")
    response = http.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303, response.text
    token = csrf_of(http.get("/issues").text)
    return http, token


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: FastAPI, sock: socket.socket) -> Iterator[str]:
    """Run `app` with uvicorn in a thread on `sock`; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.02)
    host, port = sock.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of every page: a test fails on any."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))


def no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
