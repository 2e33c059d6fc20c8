"""The lines at the top of an issue: masthead, issue number and year, date.

Printed issues start with the masthead (the centre's names, "Newsletter"), then
"Issue 13, 2022" and "September 29 2022" (or "29 September 2022", "2022-09-29").
The words come from the profile (its masthead, its issue label and month names) as
well as English, so a profile in another language imports its own issues.
"""

from __future__ import annotations

import datetime as dt
import re
from string import Formatter

from mailer.authoring.importer.matching import plain
from mailer.authoring.profile import MONTHS, Profile


def is_masthead(text: str, profile: Profile) -> bool:
    """A line that repeats one of the profile's masthead names (the profile prints them)."""
    masthead = profile.masthead
    names = (masthead.local_name, masthead.name, masthead.label, masthead.short_name)
    words = plain(text).casefold()
    return any(words == name.casefold() for name in names if name)


def issue_number(text: str, profile: Profile) -> tuple[int, int | None] | None:
    """(number, year or None) from a line such as "Issue 13, 2022" or "No. 13"."""
    found = _issue_pattern(profile).fullmatch(plain(text))
    if not found:
        return None
    number, year = int(found.group("number")), found.group("year")
    if number < 1:  # the content model's numbers start at 1
        return None
    return number, int(year) if year else None


def _issue_pattern(profile: Profile) -> re.Pattern[str]:
    words = ["issue", "no.", "no", "number", "n°", "#"]
    literal = next(iter(Formatter().parse(profile.labels.issue)), ("", None, None, None))[0]
    if literal.strip(" ,#"):
        words.insert(0, literal.strip(" ,#"))
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(
        rf"(?:{alternatives})\s*#?\s*(?P<number>\d{{1,5}})"
        rf"(?:\s*[,/|–—-]?\s*(?P<year>(?:19|2\d)\d\d))?\s*",
        re.IGNORECASE,
    )


# The years the content model accepts; other "dates" are text.
YEARS = (1900, 2999)
_ORDINAL = re.compile(r"(?<=\d)(st|nd|rd|th)\b", re.IGNORECASE)
_FORMATS = ("%m %d %Y", "%d %m %Y", "%Y %m %d")


def issue_date(text: str, profile: Profile) -> dt.date | None:
    """The date of a line that is only a date: "September 29 2022", "September 29,
    2022", "29 September 2022", "Sept. 29th, 2022", "2022-09-29" (month names in
    English or the profile's language); None for any other line."""
    words = plain(text)
    words = re.sub(r"^date\s*:\s*", "", words, flags=re.IGNORECASE)
    words = _ORDINAL.sub("", words)
    words = re.sub(r"[,.\-/]", " ", words).casefold()
    tokens = [_month_numbers(profile).get(token, token) for token in words.split()]
    if len(tokens) != 3 or not all(token.isdigit() for token in tokens):
        return None
    joined = " ".join(tokens)
    for form in _FORMATS:
        try:
            day = dt.datetime.strptime(joined, form).date()
        except ValueError:
            continue
        if YEARS[0] <= day.year <= YEARS[1]:
            return day
    return None


def _month_numbers(profile: Profile) -> dict[str, str]:
    """Month names (full, and their first three letters, and "sept") -> "1".."12"."""
    table: dict[str, str] = {"sept": "9"}
    for names in (MONTHS, profile.labels.months):
        for index, name in enumerate(names, start=1):
            folded = name.casefold()
            table[folded] = str(index)
            if folded.isascii() and len(folded) > 3:
                table.setdefault(folded[:3], str(index))
    return table
