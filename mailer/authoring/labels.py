"""The words around an issue's content, in the issue's language: the issue and date
line, "Contact Us", the footer's sentences and links.

Each comes from the profile's `labels:` for that language when it gives one, else from
the gettext catalogs (mailer.languages), else English. Dates are formatted by CLDR's
rules for the language with Babel, never by hand; a profile may still give its own
`date:` pattern with `{month} {day} {year}` (and `months:`) for a language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from babel.dates import format_date

from mailer.authoring.profile import LabelFields, Labels
from mailer.languages import ENGLISH, N_, supported, translations

# The English words, which are also the catalogs' message ids. Placeholders are
# str.format names: `{number}` and `{year}`; `{name}` and `{email}`.
ENGLISH_WORDS: dict[str, str] = {
    "issue": N_("Issue {number}, {year}"),
    "contact": N_("Contact Us"),
    "view_in_browser": N_("View in your browser"),
    "preferences": N_("Manage your subscription"),
    "unsubscribe": N_("Unsubscribe"),
    "sent_to": N_("This email was sent to {name} ({email})."),
    "links": N_("Links"),
}

# CLDR date patterns per language; "long" for the rest. English keeps the masthead's
# look since the first issues ("September 29 2022", CLDR's month names); Thai drops
# the era CLDR's "long" adds to a Gregorian date ("29 กันยายน ค.ศ. 2022").
DATE_FORMATS: dict[str, str] = {ENGLISH: "MMMM d y", "th": "d MMMM y"}


# Spaced capitals (the "CONTACT US" heading, a subtitle) suit the Latin script only:
# letter-spacing pulls apart the clusters of Thai, Khmer, Lao and Burmese (a consonant
# and its vowel signs are drawn as one), and Chinese has no capitals.
SPACED_CAPITALS = frozenset({ENGLISH, "vi"})


@dataclass(frozen=True)
class Words:
    """The labels of one issue in one language, ready for the templates."""

    language: str
    issue: str
    date: str
    contact: str
    view_in_browser: str
    preferences: str
    unsubscribe: str
    sent_to: str
    links: str

    @property
    def spaced(self) -> bool:
        """Whether headings in this language may be set in spaced capitals."""
        return self.language in SPACED_CAPITALS


def issue_date(date: dt.date, language: str) -> str:
    """A date as the masthead prints it in `language` (CLDR, through Babel)."""
    language = supported(language)
    return format_date(date, DATE_FORMATS.get(language, "long"), locale=language)


def label(field: str, language: str) -> str:
    """One label from the catalog of `language` (English when it has none)."""
    return translations(supported(language)).gettext(ENGLISH_WORDS[field])


def words_for(
    labels: Labels, language: str, *, number: int, year: int, date: dt.date, name: str, email: str
) -> Words:
    """The labels of an issue: the profile's own for its language, else the catalog's."""
    lang = supported(language)
    own = _own_labels(labels, language, lang)

    def pick(field: str) -> str:
        given = getattr(own, field) if own is not None else None
        return str(given) if given is not None else label(field, lang)

    return Words(
        language=lang,
        issue=pick("issue").format(number=number, year=year),
        date=_date(own, date, lang),
        contact=pick("contact"),
        view_in_browser=pick("view_in_browser"),
        preferences=pick("preferences"),
        unsubscribe=pick("unsubscribe"),
        sent_to=pick("sent_to").format(name=name, email=email),
        links=pick("links"),
    )


def _own_labels(labels: Labels, tag: str, lang: str) -> LabelFields | None:
    """The profile's labels for an issue's language: `labels.<tag>` (e.g. zh-Hans),
    else `labels.<lang>` (zh); for English, the flat form merged under `labels.en`."""
    per_language = labels.languages()
    own = per_language.get(tag) or per_language.get(lang)
    if lang != ENGLISH:
        return own
    flat = labels.flat()
    if own is None:
        return flat
    return flat.model_copy(update=own.given())


def _date(own: LabelFields | None, date: dt.date, lang: str) -> str:
    if own is None or own.date is None:
        return issue_date(date, lang)
    months = own.months or [
        format_date(dt.date(2000, month, 1), "LLLL", locale=lang) for month in range(1, 13)
    ]
    return own.date.format(month=months[date.month - 1], day=date.day, year=date.year)
