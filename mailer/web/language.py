"""Which language a public page speaks, and its language switch.

In order: the switch (`?lang=th`, kept by that page's links and forms only, never
stored), the subscriber's own language when the page's token names one, the browser's
Accept-Language (Babel's negotiate_locale over the catalogs we have), the profile's
`default_language`. Staff pages pass none of this and stay English.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from mailer.languages import LANGUAGES, autonym, base_language, negotiate, supported
from mailer.web.context import web

QUERY = "lang"


@dataclass(frozen=True)
class Choice:
    """One link of the language switch."""

    code: str
    name: str  # the language named in itself
    url: str
    current: bool


def page_language(request: Request, subscriber_language: str | None = None) -> str:
    chosen = base_language(request.query_params.get(QUERY))
    if chosen:
        return chosen
    own = base_language(subscriber_language)
    if own:
        return own
    negotiated = negotiate(request.headers.get("accept-language"))
    if negotiated:
        return negotiated
    return supported(web(request).profile.default_language)


def switch(request: Request, current: str) -> list[Choice]:
    """Links to this page in each language (its other query values kept)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != QUERY]
    path = request.url.path
    return [
        Choice(
            code, autonym(code), f"{path}?{urlencode([*params, (QUERY, code)])}", code == current
        )
        for code in LANGUAGES
    ]


def language_context(request: Request, subscriber_language: str | None = None) -> dict[str, Any]:
    """What a public page's template needs: `lang` (read by the i18n callables and the
    <html lang>) and `languages` (the switch)."""
    lang = page_language(request, subscriber_language)
    return {"lang": lang, "languages": switch(request, lang)}


def keep(url: str, request: Request) -> str:
    """`url` carrying the switch's choice, if the page was asked with one (its forms post
    to a URL that carries it too: the answer stays in the language the reader picked)."""
    chosen = base_language(request.query_params.get(QUERY))
    if not chosen:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({QUERY: chosen})}"
