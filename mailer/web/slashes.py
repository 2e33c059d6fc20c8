"""`/archive/` to `/archive`: the trailing-slash redirect, as a path on this site.

Starlette's router does this itself (`redirect_slashes`), but writes an absolute URL
built from the request's `Host` header, so `Host: evil.example` made the app send
people to `http://evil.example/archive`. The app turns that off and installs this as
the router's default instead: the same rule (only when no route matches and the path
with the slash added or removed does), answered with a relative `Location`, which a
browser resolves against the address it asked, whatever the header said.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send

# Characters a path may keep as they are in a Location header (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class SlashRedirect:
    """The router's fallback: a relative redirect to the other spelling, else not found."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.not_found = router.not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope) if scope["type"] == "http" else None
        if target is None:
            await self.not_found(scope, receive, send)
            return
        await RedirectResponse(target)(scope, receive, send)

    def _target(self, scope: Scope) -> str | None:
        path: str = scope["path"]  # the root_path (behind a proxy's prefix) included
        root_path: str = scope.get("root_path", "")
        if path in ("/", root_path, root_path + "/"):
            return None
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        # "//host" would be a link to another site, "/\\host" too in some browsers.
        if not other.startswith("/") or other.startswith(("//", "/\\")):
            return None
        candidate = {**scope, "path": other}
        if not any(route.matches(candidate)[0] is not Match.NONE for route in self.router.routes):
            return None
        location = quote(other, safe=_PATH_SAFE)
        query: bytes = scope.get("query_string", b"")
        if query:
            location += "?" + query.decode("latin-1")
        return location


def install(router: Router) -> None:
    """Replace the router's absolute slash redirect with `SlashRedirect`."""
    router.redirect_slashes = False
    router.default = SlashRedirect(router)
