"""The signed parts of a sign-up: the form stamp (which form, when it was shown, which
consent sentence it showed) and the confirmation link, both HMACs under the app's
secret with a purpose of their own.

Apart from the service (mailer.people.signups) because they are the one place that
signs and checks, and the web page reads them without the service's mail and render
machinery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailer.errors import PermanentError
from subscribers import signups

_STAMP_PURPOSE = b"mailer/signup-form/v1"
_LINK_PURPOSE = b"mailer/signup-confirm/v1"
_SIGNATURE_BYTES = 16
FORM_MAX_AGE = timedelta(days=1)  # a page form older than this is shown again, fresh
PAGE, EMBED = "page", "embed"  # the kinds of form a stamp names


def _key(secret: str, purpose: bytes) -> bytes:
    """A key per purpose, so a form stamp can never pass for a confirmation link."""
    return hmac.new(secret.encode("utf-8"), purpose, hashlib.sha256).digest()


def _sign(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")


def consent_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- the form stamp -------------------------------------------------------------------------


class InvalidStamp(PermanentError):
    """The form was not made by us (forged or altered), or its stamp is missing."""


@dataclass(frozen=True)
class Stamp:
    """Which form (`page` or `embed`, and the list it is for or `all`), when a page
    form was shown (0 for a snippet: static HTML has no time of its own), and the
    digest of the consent sentence it shows."""

    kind: str
    form: str
    issued: int
    consent: str

    @property
    def label(self) -> str:
        """As recorded with the consent: `page:newsletter`, `embed:events`, `page:all`."""
        return f"{self.kind}:{self.form}"


def make_stamp(secret: str, kind: str, form: str, consent_text: str, issued: int) -> str:
    body = f"{kind}.{form}.{issued}.{consent_digest(consent_text)}"
    return f"{body}.{_sign(_key(secret, _STAMP_PURPOSE), body)}"


def read_stamp(secret: str, value: str) -> Stamp:
    parts = value.split(".")
    if len(parts) != 5 or parts[0] not in (PAGE, EMBED) or not parts[2].isdigit():
        raise InvalidStamp("the form is not one of ours")
    body = ".".join(parts[:4])
    if not hmac.compare_digest(
        parts[4].encode("ascii", "replace"),
        _sign(_key(secret, _STAMP_PURPOSE), body).encode("ascii"),
    ):
        raise InvalidStamp("the form is not one of ours")
    return Stamp(parts[0], parts[1], int(parts[2]), parts[3])


# --- the confirmation link --------------------------------------------------------------------


class InvalidLink(PermanentError):
    """Not a confirmation link we sent (forged, altered, truncated, or replaced by a
    newer sign-up for the same address)."""


def make_link_token(secret: str, signup_id: int, expires: datetime, nonce: str) -> str:
    """`<id>.<expiry>.<signature>`; the signature covers the row's random nonce, so a
    link names one request and dies with it."""
    head = f"{signup_id}.{int(expires.timestamp())}"
    return f"{head}.{_sign(_key(secret, _LINK_PURPOSE), f'{head}.{nonce}')}"


def link_id(token: str) -> int:
    """The request id a token names (not yet verified: `check_link` does that)."""
    head = token.split(".", 1)[0]
    if not head.isascii() or not head.isdigit() or len(head) > 12:
        raise InvalidLink("this confirmation link is not valid")
    return int(head)


def check_link(secret: str, token: str, signup: signups.Signup | None) -> None:
    if signup is None:
        raise InvalidLink("this confirmation link is not valid")
    expected = make_link_token(secret, signup.id, signup.expires_at, signup.nonce)
    if not hmac.compare_digest(token.encode("ascii", "replace"), expected.encode("ascii")):
        raise InvalidLink("this confirmation link is not valid")
