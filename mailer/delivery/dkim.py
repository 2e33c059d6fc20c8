"""Optional DKIM signing (dkimpy); usually the relay signs and this stays off.

When on, the signature covers List-Unsubscribe and List-Unsubscribe-Post, as
RFC 8058 requires for one-click unsubscribe to be trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dkim

from mailer.errors import UserInputError

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"MIME-Version",
    b"Content-Type",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)


def make_signer(selector: str, domain: str, key_path: Path) -> Callable[[bytes], bytes]:
    """A function returning the DKIM-Signature header line(s) to prepend to a message."""
    try:
        private_key = key_path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"dkim_private_key_path: cannot read {key_path}: {exc}") from None

    def sign(message: bytes) -> bytes:
        return bytes(
            dkim.sign(
                message,
                selector.encode("ascii"),
                domain.encode("ascii"),
                private_key,
                include_headers=list(SIGNED_HEADERS),
            )
        )

    return sign
