"""Per-subscriber unsubscribe tokens: the subscriber id, signed with HMAC-SHA256.

The token goes into the unsubscribe and preferences URLs of every message and into
the VERP bounce address, so it is short and URL-safe. Anyone holding it may
unsubscribe that one subscriber, nothing more; a forged or altered token is refused.
Changing `secret_key` invalidates every token already sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from mailer.errors import PermanentError

_PURPOSE = b"mailer/unsubscribe/v1:"
_SIGNATURE_BYTES = 16  # 128 bits: far beyond guessing, keeps URLs short


class InvalidToken(PermanentError):
    """The token was not made with our secret (forged, altered or truncated)."""


def _signature(secret: str, subscriber_id: int) -> str:
    digest = hmac.new(
        secret.encode("utf-8"), _PURPOSE + str(subscriber_id).encode("ascii"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:_SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")


def make_token(secret: str, subscriber_id: int) -> str:
    """A token like `42.Vb3…`: the id, a dot, and a 22-character URL-safe signature."""
    if subscriber_id < 0:
        raise ValueError("subscriber ids are positive")
    return f"{subscriber_id}.{_signature(secret, subscriber_id)}"


def read_token(secret: str, token: str) -> int:
    """The subscriber id inside a token we made; InvalidToken for anything else."""
    head, dot, signature = token.partition(".")
    if not dot or not head.isascii() or not head.isdigit() or len(head) > 19:
        raise InvalidToken("this unsubscribe link is not valid")
    subscriber_id = int(head)
    if str(subscriber_id) != head or not hmac.compare_digest(
        signature.encode("ascii", "replace"), _signature(secret, subscriber_id).encode("ascii")
    ):
        raise InvalidToken("this unsubscribe link is not valid")
    return subscriber_id
