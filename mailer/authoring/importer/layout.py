"""The layout of a printed issue, read from lines: the parser both readers share.

The layout (see README, "Import"): masthead lines, "Issue 13, 2022", the date, the
title, lead paragraphs, statement cards, closing paragraphs, "Contact Us" and its
lines, the About text. A statement card is a name line, one or more role lines, then
the statement's text. Lines are told apart by their shape, not by the words of any
one issue: prose is long or reads as sentences (mostly lower-case words, ending with
a full stop); names are a few capitalised words; what stands between a name and a
paragraph is a role line.

Nothing is dropped: a line that fits nowhere is kept as a paragraph and named in a
warning, and so is every guess the editor should check.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pydantic import ValidationError

from mailer.authoring.content import MAX_SUBJECT, Issue
from mailer.authoring.importer.header import is_masthead, issue_date, issue_number
from mailer.authoring.importer.lines import Line
from mailer.authoring.importer.matching import (
    about_lead,
    is_contact_heading,
    match_about,
    match_contact,
    plain,
)
from mailer.authoring.markdown import link_targets
from mailer.authoring.profile import Profile
from mailer.authoring.slots import SLOT_PATTERN
from subscribers.countries import normalise_country
from subscribers.errors import StoreInputError

# --- the shape of a line -------------------------------------------------------------

_END = re.compile(r"[.!?…:。！？][\"'”’»)\]]*$")
# A statement given in quotation marks, however short.
_QUOTED = re.compile(r"^[\"“„«「『‘'].*[\"”“»」』’'][.!?…。]?$", re.DOTALL)
_HONORIFIC = re.compile(
    r"^(mr|mrs|ms|miss|dr|prof|professor|h\.?\s?e|sir|madam|dame|assoc\.? prof)\.?\s",
    re.IGNORECASE,
)
# Words that make a short line a role or an organisation, not a person's name.
_NOT_NAME = {
    word.casefold()
    for word in (
        "Director Directors Director-General President Vice Minister Secretary Head Chair"
        " Chairman Chairperson Chairwoman Advisor Adviser Officer Manager Coordinator"
        " Representative Ambassador Deputy Senior Chief Fellow Researcher Specialist"
        " Expert Member Founder Lecturer Professor Consultant Executive Programme Program"
        " University Ministry Department Center Centre Institute Agency Office Commission"
        " Council Association Foundation Secretariat Bank Network Division Bureau"
        " Authority Organization Organisation Committee Academy College School Company"
        " Ltd Group Government Embassy Union Forum Fund Society Contact Address Tel Fax"
        " Email E-mail Web Website Phone"
    ).split()
}
_PARTICLES = {
    "van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "dos", "das",
    "bin", "binti", "bint", "ibn", "al", "el", "la", "le", "y", "e", "ten", "ter",
}  # fmt: skip
# A role line ending in one of these words goes on in the next line (it was wrapped).
_OPEN_END = {"of", "the", "and", "for", "to", "in", "on", "at", "&", "with", "de", "/"}


def _words(text: str) -> list[str]:
    return plain(text).split()


def _lower_share(text: str) -> tuple[int, float]:
    """(words with a case, the share of them that start lower-case)."""
    cased = [w for w in (_first_letter(word) for word in _words(text)) if w and w.isalpha()]
    cased = [w for w in cased if w.lower() != w.upper()]
    if not cased:
        return 0, 0.0
    return len(cased), sum(w.islower() for w in cased) / len(cased)


def _first_letter(word: str) -> str:
    return next((char for char in word if char.isalpha()), "")


def is_prose(text: str) -> bool:
    """A paragraph's line: long, quoted, or a sentence (ends like one, mostly lower-case
    words; for scripts without case, long enough). Role lines are short and capitalised."""
    words = plain(text)
    if len(words) >= 200 or _QUOTED.match(words):
        return True
    cased, lower = _lower_share(words)
    ends = bool(_END.search(words))
    if ends and len(words) >= 100:
        return True
    if cased >= 3:
        return ends and lower >= 0.5
    return ends and cased == 0 and len(words) >= 30


def _reads_as_sentence(text: str) -> bool:
    cased, lower = _lower_share(text)
    return is_prose(text) or (cased >= 3 and lower >= 0.5)


def looks_like_name(text: str) -> bool:
    """A person's name: a few capitalised words (particles such as "van" allowed), no
    digits, no role or organisation words, not ending like a sentence or a list item."""
    words = _words(text)
    joined = " ".join(words)
    if not words or len(words) > 8 or len(joined) > 80 or any(c.isdigit() for c in joined):
        return False
    if joined[-1] in ",;:!?" or (joined.endswith(".") and len(words[-1]) > 5):
        return False
    for word in words:
        bare = word.strip("()[],.\"'“”‘’").casefold()
        if bare in _NOT_NAME:
            return False
        letter = _first_letter(word)
        if letter.islower() and bare not in _PARTICLES:
            return False
    return True


# --- units: single short lines and paragraphs ----------------------------------------


@dataclass
class _Unit:
    """A short line (a name, a role, a heading) or a paragraph of one or more lines."""

    lines: list[Line]
    prose: bool

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def where(self) -> str:
        return self.lines[0].where


def _units(lines: Sequence[Line]) -> list[_Unit]:
    """Runs of lines that may belong together (no empty line between them in a text
    file; line breaks inside one paragraph of a Word document) become short lines and
    paragraphs; a paragraph may be wrapped over several lines."""
    runs: list[list[Line]] = []
    for line in lines:
        if runs and line.joins:
            runs[-1].append(line)
        else:
            runs.append([line])
    units: list[_Unit] = []
    for run in runs:
        units.extend(_split_run(run))
    return units


def _split_run(run: list[Line]) -> list[_Unit]:
    """Short lines up to where the prose starts; then paragraphs (a new one where a
    long line ending a sentence is followed by another long line)."""
    for start in range(len(run)):
        tail = run[start:]
        if not _reads_as_sentence(run[start].text):
            continue
        sentences = sum(_reads_as_sentence(line.text) for line in tail)
        if is_prose(" ".join(line.text for line in tail)) and 2 * sentences >= len(tail):
            head = [_Unit([line], prose=False) for line in run[:start]]
            return head + _paragraphs(tail)
    return [_Unit([line], prose=False) for line in run]


def _paragraphs(lines: list[Line]) -> list[_Unit]:
    units = [_Unit([lines[0]], prose=True)]
    for before, line in pairwise(lines):
        long_lines = len(before.text) >= 100 and len(line.text) >= 100
        if long_lines and _END.search(plain(before.text)):
            units.append(_Unit([line], prose=True))
        else:
            units[-1].lines.append(line)
    return units


# --- the document ----------------------------------------------------------------------


@dataclass
class _Block:
    """A block of the document and the line it starts on (for warnings after repair)."""

    content: dict[str, Any]
    where: str


@dataclass
class _Reader:
    profile: Profile
    today: dt.date
    warnings: list[str] = field(default_factory=list)

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")

    def read(self, lines: list[Line]) -> dict[str, Any]:
        if not lines:
            return {}
        position, number, year, date, leading = self._header(lines)
        title, position = self._title(lines, position, number, year)
        body, tail = self._split_tail(lines[position:])
        blocks: list[_Block] = [
            self._kept(line, "above the issue number and not in the profile's masthead")
            for line in leading
        ]
        subtitle, more = self._body(_units(body), bool(title[1]))
        blocks.extend(title[1])
        blocks.extend(more)
        contact, about, after = self._tail(tail, blocks)
        blocks.extend(after)
        document: dict[str, Any] = {
            "newsletter": self.profile.id,
            "number": number,
            "year": year,
            "date": date.isoformat(),
            "language": self.profile.language,
            "title": title[0],
        }
        if subtitle:
            document["subtitle"] = subtitle
        document["blocks"] = [block.content for block in blocks]
        if contact is not None:
            document["contact"] = contact
        if about is not None:
            document["about"] = about
        if not blocks:
            self.warn(lines[-1].where, "no paragraph or statement found; add at least one block")
        return _repaired(document, blocks, self)

    # -- header

    def _header(self, lines: list[Line]) -> tuple[int, int, int, dt.date, list[Line]]:
        """Where the title starts, the number, year and date, and unknown lines above."""
        found_number: tuple[int, int | None] | None = None
        found_date: dt.date | None = None
        end = 0
        used: set[int] = set()  # the lines read as number and date
        for index, line in enumerate(lines[:8]):
            if found_number is None and (parsed := issue_number(line.text, self.profile)):
                found_number, end = parsed, index + 1
                used.add(index)
            elif found_date is None and (day := issue_date(line.text, self.profile)):
                found_date, end = day, index + 1
                used.add(index)
        while end < len(lines) and is_masthead(lines[end].text, self.profile):
            end += 1
        leading = [
            line
            for index, line in enumerate(lines[:end])
            if index not in used and not is_masthead(line.text, self.profile)
        ]
        first = lines[0].where
        if found_date is None:
            date = self.today
            self.warn(first, f"no date found (a line such as 'September 29 2022'); set to {date}")
        else:
            date = found_date
        if found_number is None:
            number, year = 1, date.year
            self.warn(first, "no issue number found (a line such as 'Issue 13, 2022'); set to 1")
        else:
            number, year = found_number[0], found_number[1] or date.year
            if found_date is not None and found_number[1] and found_number[1] != date.year:
                self.warn(first, f"the issue's year {year} is not the year of its date {date}")
        return end, number, year, date, leading

    def _title(
        self, lines: list[Line], position: int, number: int, year: int
    ) -> tuple[tuple[str, list[_Block]], int]:
        """The title line, or a stand-in (and the line kept as a paragraph)."""
        stand_in = self.profile.labels.issue.format(number=number, year=year)
        if position >= len(lines):
            self.warn(lines[-1].where, f"no title found; set to {stand_in!r}")
            return (stand_in, []), position
        line = lines[position]
        # The title takes no Markdown (it is the subject too): formatting is dropped.
        text = line.text if link_targets(line.text) else plain(line.text)
        if (
            len(text) <= MAX_SUBJECT
            and not SLOT_PATTERN.search(text)
            and not is_contact_heading(text, self.profile)
            and not (is_prose(text) and len(text) > 150)
        ):
            return (text, []), position + 1
        self.warn(
            line.where,
            f"this is not a title (too long, or not a heading); kept as a paragraph, and"
            f" the title set to {stand_in!r}",
        )
        return (stand_in, [_Block({"paragraph": line.text}, line.where)]), position + 1

    # -- body

    def _split_tail(self, lines: list[Line]) -> tuple[list[Line], list[Line]]:
        for index, line in enumerate(lines):
            if is_contact_heading(line.text, self.profile):
                return lines[:index], lines[index:]
        return lines, []

    def _body(self, units: list[_Unit], no_title: bool) -> tuple[str | None, list[_Block]]:
        """(subtitle, blocks): lead paragraphs, cards, closing paragraphs, and what
        fits nowhere as paragraphs."""
        blocks: list[_Block] = []
        subtitle: str | None = None
        cards = _cards(units)
        last_card = max(cards) if cards else -1
        index = 0
        current: dict[str, Any] | None = None
        while index < len(units):
            unit = units[index]
            if index in cards:
                name_at, text_at = cards[index]
                for leftover in units[index:name_at]:
                    if subtitle is None and not blocks and not no_title:
                        subtitle = leftover.text
                    else:
                        blocks.append(self._kept(leftover.lines[0], "before a statement"))
                current = self._card(units[name_at:text_at], units[text_at])
                blocks.append(_Block({"statement": current}, units[name_at].where))
                index = text_at + 1
                continue
            if unit.prose:
                if current is not None and index < last_card:
                    current["text"] += "\n\n" + unit.text
                    self.warn(
                        unit.where,
                        f"taken as a further paragraph of {current['name']}'s statement",
                    )
                else:
                    blocks.append(_Block({"paragraph": unit.text}, unit.where))
            elif subtitle is None and not blocks and not no_title and index + 1 < len(units):
                subtitle = unit.text
            elif _END.search(plain(unit.text)):
                blocks.append(_Block({"paragraph": unit.text}, unit.where))
                current = None  # what follows is no longer the card's
            else:
                blocks.append(self._kept(unit.lines[0], "a short line outside a statement"))
                current = None
            index += 1
        return subtitle, blocks

    def _kept(self, line: Line, why: str) -> _Block:
        self.warn(line.where, f"{why}; kept as a paragraph: {line.text!r}")
        return _Block({"paragraph": line.text}, line.where)

    def _card(self, head: list[_Unit], text: _Unit) -> dict[str, Any]:
        name, lines = head[0].text, [unit.text for unit in head[1:]]
        if name.startswith("**") and name.count("**") % 2:  # name and roles all bold
            name = name[2:]
            for index, line in enumerate(lines):
                if line.count("**") % 2:
                    at = line.rfind("**")
                    lines[index] = (line[:at] + line[at + 2 :]).strip()
                    break
        name = _unwrap(name)
        roles = _roles(lines)
        statement: dict[str, Any] = {"name": name, "roles": roles}
        country = _country(roles)
        if country:
            statement["country"] = country
        statement["text"] = text.text
        return statement

    # -- contact and about

    def _tail(
        self, tail: list[Line], blocks: list[_Block]
    ) -> tuple[list[str] | None, str | None, list[_Block]]:
        """(contact, about, paragraphs after them) from the lines from "Contact Us" on;
        without that heading, an About paragraph at the end of the body."""
        lead = about_lead(self.profile)
        if not tail:
            last = blocks[-1].content.get("paragraph") if blocks else None
            if isinstance(last, str) and _is_about(last, lead):
                blocks.pop()
                return None, match_about(last, self.profile), []
            return None, None, []
        contact: list[str] = []
        rest = tail[1:]
        while rest and not is_prose(rest[0].text) and not _is_about(rest[0].text, lead):
            if contact and rest[0].gap:
                contact.append("")
            contact.append(rest[0].text)
            rest = rest[1:]
        matched: list[str] | None = None
        if contact:
            matched = match_contact(contact, self.profile)
        else:
            self.warn(tail[0].where, "a contact heading with no lines under it; left out")
        units = _units(rest)
        chosen = next((unit for unit in units if _is_about(unit.text, lead)), None)
        if chosen is None:  # the About text follows the contact block
            chosen = next((unit for unit in units if unit.prose), None)
        after: list[_Block] = []
        for unit in units:
            if unit is not chosen:
                self.warn(unit.where, "after the contact block; kept as a paragraph at the end")
                after.append(_Block({"paragraph": unit.text}, unit.where))
        about = match_about(chosen.text, self.profile) if chosen else None
        return matched, about, after


def _is_about(text: str, lead: str | None) -> bool:
    words = plain(text)
    return bool((lead and words.startswith(lead)) or re.match(r"^About\s[^:.]{1,60}:", words))


def _cards(units: list[_Unit]) -> dict[int, tuple[int, int]]:
    """Statement cards: start of the short lines before -> (name, text) positions."""
    cards: dict[int, tuple[int, int]] = {}
    index = 0
    while index < len(units):
        if units[index].prose:
            index += 1
            continue
        end = index
        while end < len(units) and not units[end].prose:
            end += 1
        if end < len(units) and end - index >= 2:
            candidates = [i for i in range(index, end - 1) if looks_like_name(units[i].text)]
            titled = [i for i in candidates if _HONORIFIC.match(plain(units[i].text))]
            if candidates:
                cards[index] = ((titled or candidates)[0], end)
        index = end + 1
    return cards


_WRAPPED = re.compile(r"^(\*{1,3})(?!\*)(.*?)(?<!\*)\1$")


def _unwrap(text: str) -> str:
    """A line written wholly in bold or italic, without the markers (a card styles
    names and roles itself)."""
    found = _WRAPPED.match(text)
    if found and "*" not in found.group(2):
        return found.group(2).strip() or text
    return text


def _roles(lines: list[str]) -> list[str]:
    """Role lines as written, except that lines wrapped in the middle of a role (inside
    bold markers, before a lower-case word or a bracket, after "of", "the", "and")
    are joined again."""
    spans: list[str] = []
    for line in lines:
        if spans and spans[-1].count("**") % 2:
            spans[-1] += " " + line
        else:
            spans.append(line)
    roles: list[str] = []
    for span in (_unwrap(span) for span in spans):
        first = _first_letter(span)
        open_end = roles and plain(roles[-1]).split()[-1].casefold() in _OPEN_END
        if roles and (open_end or first.islower() or plain(span).startswith("(")):
            roles[-1] += " " + span
        else:
            roles.append(span)
    return roles


def _country(roles: list[str]) -> str | None:
    """The country a card's last role line ends with ("..., Vietnam"), if any."""
    if not roles:
        return None
    last = plain(roles[-1]).rstrip(" ,.;").rpartition(",")[2].strip()
    if len(last) < 4:
        return None
    try:
        return normalise_country(last)
    except StoreInputError:
        return None


# --- making the document valid --------------------------------------------------------

_LINK_SYNTAX = re.compile(r"([\[\]<>])")
# The links the content model accepts (mailer.authoring.content checks the same).
_ABSOLUTE = re.compile(r"^(https?://[^\s/$.?#][^\s]*|mailto:[^\s@]+@[^\s@]+)$", re.IGNORECASE)


def _unlinked(value: str) -> str:
    """`value` with its refused links escaped (shown as the text they are); when they
    cannot be found as written, every bracket is escaped."""
    out = value
    for target in link_targets(value):
        if not _ABSOLUTE.match(target):
            out = out.replace(f"]({target}", f"\\]({target}").replace(
                f"<{target}>", f"\\<{target}>"
            )
    if out == value or any(not _ABSOLUTE.match(t) for t in link_targets(out)):
        out = _LINK_SYNTAX.sub(r"\\\1", value)
    return out


def _repaired(document: dict[str, Any], blocks: list[_Block], reader: _Reader) -> dict[str, Any]:
    """The document as the content model accepts it: text that the model refuses
    (links to something other than a web or mail address) is kept as literal text."""
    for _ in range(3):
        try:
            Issue.model_validate(document)
            return document
        except ValidationError as exc:
            errors = exc.errors()
        changed = False
        for error in errors:
            location = [part for part in error["loc"] if part not in ("statement", "paragraph")]
            changed |= _escape_at(document, blocks, location, error["msg"], reader)
        if not changed:
            break
    return document


def _escape_at(
    document: dict[str, Any],
    blocks: list[_Block],
    location: list[int | str],
    message: str,
    reader: _Reader,
) -> bool:
    """Escape the link syntax of the text at `location`; False if there is none."""
    if not location or "link" not in message:
        return False
    if location[0] == "blocks" and len(location) >= 2 and isinstance(location[1], int):
        where = blocks[location[1]].where
        content = document["blocks"][location[1]]
        key = "statement" if "statement" in content else "paragraph"
        holder: Any = content[key] if key == "statement" else content
        path: list[int | str] = [*location[2:]] or ["paragraph"]
    else:
        holder, path = document, list(location)
        where = "the contact or About text"
    for part in path[:-1]:
        holder = holder[part]
    last = path[-1]
    value = holder[last]
    if not isinstance(value, str) or not _LINK_SYNTAX.search(value):
        return False
    holder[last] = _unlinked(value)
    reader.warn(
        where,
        f"a link to something other than a web or mail address is kept as text: {value!r}",
    )
    return True


def read_layout(
    lines: list[Line], profile: Profile, today: dt.date
) -> tuple[dict[str, Any], list[str]]:
    """The document of an issue laid out as printed, and the warnings."""
    reader = _Reader(profile, today)
    document = reader.read(lines)
    return document, reader.warnings
