"""The public URLs that emails link to and the web app serves: one place for both sides."""

from __future__ import annotations

from urllib.parse import quote


def unsubscribe(base: str, token: str) -> str:
    """GET shows a confirmation page; POST `List-Unsubscribe=One-Click` unsubscribes (RFC 8058)."""
    return f"{base}/unsubscribe/{quote(token, safe='')}"


def preferences(base: str, token: str) -> str:
    return f"{base}/preferences/{quote(token, safe='')}"


def view_in_browser(base: str, campaign_id: int, language: str | None = None) -> str:
    """The web copy; with `language`, of that language's variant (`?lang=zh`)."""
    if language:
        return f"{base}/view/{campaign_id}?lang={quote(language, safe='')}"
    return f"{base}/view/{campaign_id}"


def archive(base: str) -> str:
    return f"{base}/archive"


def archive_feed(base: str) -> str:
    return f"{base}/archive/feed.atom"


def media(base: str, filename: str) -> str:
    return f"{base}/media/{quote(filename)}"
