"""The Contact Us and About blocks of an imported issue, matched against the profile.

An issue's contact block and About text override the profile's (see
mailer.authoring.content.Issue), so an imported issue keeps them only where they
differ from the profile. They are compared as a reader sees them: the plain text
that the Markdown renders to (so `<li.xia@fecomee.org.cn>` in the profile equals
`li.xia@fecomee.org.cn` in a partner's text), whitespace ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailer.authoring.markdown import Links, Markdown
from mailer.authoring.profile import Profile

_MARKDOWN = Markdown()


def plain(source: str) -> str:
    """What a reader sees of inline Markdown, whitespace collapsed."""
    return " ".join(_MARKDOWN.inline_text(source, Links()).split())


def match_contact(lines: Sequence[str], profile: Profile) -> list[str] | None:
    """The issue's own contact block, or None when it says what the profile says.

    `lines` are the block's lines as written, "" where the text had empty lines
    between groups. A line that equals one of the profile's takes the profile's
    wording, so that its links (written `<...>` there) keep working."""
    written = [line for line in lines if line]
    if [plain(line) for line in written] == [plain(line) for line in profile.contact if line]:
        return None
    known = {plain(line): line for line in profile.contact if line}
    return [known.get(plain(line), line) if line else "" for line in lines]


_LEADING_STRONG = re.compile(r"^\*\*(.+?)\*\*\s*")


def match_about(text: str, profile: Profile) -> str | None:
    """The issue's own About text, or None when it is the profile's.

    When the profile's About text starts with a bold lead-in ("**About LMEC:**") and
    the imported one starts with the same words, they are made bold the same way."""
    if plain(text) == plain(profile.about):
        return None
    lead = _LEADING_STRONG.match(profile.about)
    if lead and text.startswith(lead.group(1)) and not text.startswith("**"):
        return f"**{lead.group(1)}**{text[len(lead.group(1)) :]}"
    return text


def about_lead(profile: Profile) -> str | None:
    """The words the profile's About text starts with in bold ("About LMEC:"), if any."""
    lead = _LEADING_STRONG.match(profile.about)
    return plain(lead.group(1)) if lead else None


def is_contact_heading(text: str, profile: Profile) -> bool:
    """A line that introduces the contact block: the profile's label ("Contact Us")
    or the usual English ones, with or without a colon, in any case."""
    words = plain(text).rstrip(":").strip().casefold()
    return words in {plain(profile.labels.contact).casefold(), "contact us", "contact", "contacts"}
