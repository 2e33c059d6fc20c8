"""What every request handler needs, built once per app and reached through the request.

The app keeps a `WebContext` on `app.state` (no module-level state), and handlers get
the pieces through the small FastAPI dependencies below.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from mailer.accounts import Accounts
from mailer.compose import Root
from mailer.profile import Profile
from mailer.web.pages import Pages


@dataclass
class WebContext:
    root: Root
    accounts: Accounts
    pages: Pages
    profile: Profile
    cache: dict[str, Any] = field(default_factory=dict)  # parts built lazily (renderer)


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def db(request: Request) -> Iterator[Session]:
    """One database session per request; handlers commit what they change."""
    with web(request).root.sessions() as session:
        yield session
