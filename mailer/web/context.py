"""What every request handler needs, built once per app and reached through the request.

The app keeps a `WebContext` on `app.state` (no module-level state), and handlers get
the pieces through the small FastAPI dependencies below.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.orm import Session

from mailer.authoring.profile import Profile
from mailer.authoring.render import Renderer
from mailer.compose import Root
from mailer.people.accounts import Accounts
from mailer.web.pages import Pages


@dataclass
class WebContext:
    root: Root
    accounts: Accounts
    pages: Pages
    profile: Profile
    # Login attempts one at a time (check, verify, record, commit), so guesses fired in
    # parallel see each other's failures and cannot outrun the throttle.
    login_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def renderer(self) -> Renderer:
        """The root's renderer: built on first use (it loads templates), then shared."""
        return self.root.renderer()


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def db(request: Request) -> Iterator[Session]:
    """One database session per request; handlers commit what they change."""
    with web(request).root.sessions() as session:
        yield session
