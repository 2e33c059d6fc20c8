"""The languages the newsletter's own words exist in, and their gettext catalogs.

The catalogs (mailer/locale/<lang>/LC_MESSAGES/messages.po, compiled to .mo beside
them and committed) hold the words around an email's content (the labels,
mailer.authoring.labels) and the public pages' words (templates/web/public). A
language not listed here gets English: never an empty label, never a missing page.
See README, "Words and pages in each language", for adding one.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from babel import Locale
from babel.core import UnknownLocaleError, negotiate_locale
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
ENGLISH = "en"
# English first (the source language), then the region's, in the order the issue names them.
LANGUAGES = ("en", "zh", "th", "km", "lo", "my", "vi")


def N_(message: str) -> str:
    """Marks an English message for extraction (`pybabel extract -k N_`, the gettext
    convention); it is translated where it is shown."""
    return message


def base_language(tag: str | None) -> str | None:
    """`zh-Hans`, `zh_CN`, `ZH` -> `zh`; the catalog a tag reads, or None for one we lack."""
    if not tag:
        return None
    base = tag.replace("_", "-").split("-")[0].strip().lower()
    return base if base in LANGUAGES else None


def supported(tag: str | None) -> str:
    """The language whose words a reader of `tag` gets: theirs, or English."""
    return base_language(tag) or ENGLISH


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of a supported language (English is the source: no catalog)."""
    language = supported(language)
    if language == ENGLISH:
        return NullTranslations()
    found = Translations.load(str(LOCALE_DIR), [language], DOMAIN)
    if not isinstance(found, Translations):  # a .mo missing: a broken checkout, say so
        raise FileNotFoundError(
            f"no compiled catalog {LOCALE_DIR / language / 'LC_MESSAGES' / DOMAIN}.mo"
            " (run: pybabel compile -d mailer/locale)"
        )
    return found


@cache
def autonym(language: str) -> str:
    """A language named in itself, as CLDR writes it: 中文, ไทย, ខ្មែរ, Tiếng Việt..."""
    try:
        name = Locale.parse(language).get_display_name(language) or language
    except (UnknownLocaleError, ValueError):
        return language
    return name[:1].upper() + name[1:] if name[:1].isascii() else name


def negotiate(accept_language: str | None, available: Iterable[str] = LANGUAGES) -> str | None:
    """The best of `available` for an HTTP Accept-Language header (RFC 9110 quality
    values, highest first), by Babel's negotiate_locale; None when nothing fits."""
    if not accept_language:
        return None
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag.replace("_", "-")))
    preferred = [tag for _, _, tag in sorted(weighted)]
    # Babel matches `zh-CN` to `zh` only through its aliases; add each base tag after it.
    expanded: list[str] = []
    for tag in preferred:
        expanded.append(tag)
        base = tag.split("-")[0]
        if base not in expanded:
            expanded.append(base)
    found = negotiate_locale(expanded, list(available), sep="-")
    return base_language(found)
