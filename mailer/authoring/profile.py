"""The newsletter profile (config/newsletter.yaml): what stays the same in every issue.

Masthead, sender, contact block, "About" text, colours, default language and time
zone. Issues refer to it by `newsletter:`; a few issues may override the contact
block or the About text (see mailer.authoring.content.Issue).
"""

from __future__ import annotations

import re
import unicodedata
from email.headerregistry import Address
from pathlib import Path
from string import Formatter
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailer.authoring.content import MAX_NAME, NonEmpty, Strict, Text, check_source
from mailer.authoring.loader import parse_yaml, read_text, validate_yaml

Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


def _one_line(value: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value):
        raise ValueError("must be one line (it goes into mail headers)")
    return value


# Names that end up in From and List-Id headers: a line break there is refused by the
# email library at sending time; say so when the profile is loaded instead.
HeaderName = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_one_line)]


class Masthead(Strict):
    local_name: str = ""  # the name in the centre's own script, shown first
    name: HeaderName
    label: str = "Newsletter"
    short_name: str = ""


class Logo(Strict):
    """A small logo above the masthead names: an https URL or a file beside the profile."""

    src: NonEmpty
    alt: NonEmpty
    width: int = Field(default=64, ge=16, le=536)  # displayed width in px

    @field_validator("src")
    @classmethod
    def _src(cls, value: str) -> str:
        return check_source(value)


class Sender(Strict):
    name: HeaderName
    address: NonEmpty
    reply_to: str | None = None

    @field_validator("address", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        """An address fit for From and Reply-To: ASCII, the domain as IDNA (xn--...)."""
        if value is None:
            return None
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"not an email address: {value!r}")
        local, _, domain = value.rpartition("@")
        if not local.isascii():
            raise ValueError(
                f"the part before @ must be ASCII (many mail servers refuse others): {value!r}"
            )
        try:
            return f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            raise ValueError(f"not a valid domain name: {domain!r}") from None

    @property
    def mailbox(self) -> str:
        """The From value every message and every campaign uses: `Name <address>`, the
        name quoted only where header syntax needs it and never encoded here (the
        message builder encodes it when it writes the header)."""
        return str(Address(display_name=self.name, addr_spec=self.address))


class Colours(Strict):
    """The palette of the email; defaults are a calm green that prints well."""

    primary: Colour = "#0b5d4b"  # masthead band, card rules, buttons
    # Small text (country line, subtitle) and rules; dark enough for 4.5:1 on the card.
    accent: Colour = "#946614"
    # The accent where it frames things on the primary band (the masthead label): the
    # brighter brand gold, as it is no text and sits on a dark colour.
    accent_on_primary: Colour = "#c98a1b"
    text: Colour = "#1f2a27"
    muted: Colour = "#5b6b66"  # role lines, footer
    background: Colour = "#eef2f0"  # around the 600 px body
    card: Colour = "#f6f9f8"  # statement cards, footer panel
    link: Colour = "#0b6e4f"


class LabelFields(Strict):
    """Words the templates print around the content, for one language. Each one left
    out comes from the gettext catalogs (mailer.authoring.labels), so a profile gives
    only the words it wants different."""

    issue: str | None = None  # "Issue {number}, {year}"
    # "{month} {day} {year}"; left out: the date as CLDR writes it in the language
    date: str | None = None
    months: list[str] | None = Field(default=None, min_length=12, max_length=12)
    contact: str | None = None
    view_in_browser: str | None = None
    preferences: str | None = None
    unsubscribe: str | None = None
    sent_to: str | None = None  # "This email was sent to {name} ({email})."
    links: str | None = None

    @field_validator("issue", "date", "sent_to")
    @classmethod
    def _placeholders(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        allowed = {"issue": ("number", "year"), "date": ("month", "day", "year")}.get(
            str(info.field_name), ("name", "email")
        )
        try:  # plain names only: `{number.real}` or `{0}` would fail (or worse) at render
            fields = [
                (name, spec) for _, name, spec, _ in Formatter().parse(value) if name is not None
            ]
        except ValueError:
            fields = [("", "")]
        if any(name not in allowed or "{" in (spec or "") for name, spec in fields):
            shown = " ".join(f"{{{name}}}" for name in allowed)
            raise ValueError(f"may only use the placeholders {shown}: {value!r}")
        return value

    def given(self) -> dict[str, object]:
        """The labels this profile wrote (the rest come from the catalogs)."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name in LabelFields.model_fields
        }


_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class Labels(LabelFields):
    """The profile's `labels:`: per language (`labels: {zh: {contact: 联系我们}}`), and
    the older flat form (`labels: {contact: Contact us}`), which is English."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, LabelFields] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _language_keys(cls, data: Any) -> Any:
        """A key that is neither a label nor a language tag is a typo: say which."""
        if isinstance(data, dict):
            for key in data:
                if key not in LabelFields.model_fields and not _LANGUAGE_TAG.match(str(key)):
                    known = ", ".join(LabelFields.model_fields)
                    raise ValueError(
                        f"unknown label {key!r}: a label is one of {known}, or a language"
                        " tag such as zh or th holding the labels for that language"
                    )
        return data

    def languages(self) -> dict[str, LabelFields]:
        return dict(self.__pydantic_extra__ or {})

    def flat(self) -> LabelFields:
        return LabelFields.model_validate(self.given())


class Profile(Strict):
    """Everything about a newsletter that is not a single issue's content."""

    id: NonEmpty
    masthead: Masthead
    sender: Sender
    list_id: NonEmpty  # RFC 2919 List-Id, e.g. newsletter.lmec.example.org
    website: str | None = None
    logo: Logo | None = None
    contact: list[Text] = Field(default_factory=list)  # inline Markdown, one line each
    about: Text = ""  # inline Markdown
    colours: Colours = Field(default_factory=Colours)
    labels: Labels = Field(default_factory=Labels)
    countries: dict[str, str] = Field(default_factory=dict)  # code -> name shown on cards
    language: str = "en"
    # The variant everyone gets whose language has none (mailer.authoring.variants).
    default_language: str = "en"
    timezone: str = "UTC"

    _folder: Path | None = PrivateAttr(default=None)

    def resolve(self, src: str) -> Path | None:
        """The local file behind the logo (None for https URLs)."""
        if src.lower().startswith("https://"):
            return None
        return (self._folder or Path.cwd()) / src

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("default_language")
    @classmethod
    def _default_language(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", value):
            raise ValueError(f"expected a language tag such as 'en' or 'zh-Hans', got {value!r}")
        return value

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value):
            raise ValueError(f"List-Id must look like a domain name (RFC 2919), got {value!r}")
        return value


def load_profile(path: Path) -> Profile:
    """Load and validate a profile file; raises ContentError listing every problem."""
    text = read_text(path)
    profile = validate_yaml(Profile, parse_yaml(text, str(path)), str(path))
    profile._folder = path.resolve().parent
    return profile
