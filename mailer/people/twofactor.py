"""Two-factor sign-in for staff: TOTP codes (RFC 6238) and one-time recovery codes.

A user enrols from the Account page: a new secret is stored *pending*, shown as a QR
code and as text, and only a correct code from the app turns it on, so nobody is
locked out by a scan that did not take. Turning it on makes ten recovery codes,
shown once.

How things are kept, and why:

- The TOTP secret must be read back to compute codes, so it cannot be hashed like a
  password. It is encrypted with AES-GCM under a key derived (HKDF-SHA256) from
  `MAILER_SECRET_KEY`, with the user's id as associated data, so a copy of the
  database alone gives no one the codes, and a secret copied onto another user's row
  does not decrypt. Changing `MAILER_SECRET_KEY` makes the stored secrets unreadable:
  the codes then fail, recovery codes still work, and the user enrols again (or an
  admin or `mailer user reset-2fa` resets the factor).
- Recovery codes are 80 random bits each (16 symbols of Crockford's base32) and kept as
  their SHA-256. Argon2's cost exists to slow guessing of low-entropy human passwords;
  against 2^80 possibilities a single fast hash is already out of reach, needs no key
  (so the codes survive a change of `MAILER_SECRET_KEY`, exactly when they are needed),
  and lets the code be found by an indexed lookup instead of ten argon2 verifications.
- The time step of the last accepted code is stored, and a code is accepted only for a
  later step: a code seen over a shoulder or in a proxy log cannot be used again, even
  within its 30 s window (one step of clock drift either way is allowed). Recovery
  codes are marked used; each conditional UPDATE is the check, so two requests racing
  with the same code cannot both win.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from mailer.errors import PermanentError, UserInputError
from subscribers.base import Base

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # codes of the step before and after are accepted too (clock drift)
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
RECOVERY_LENGTH = 16  # 16 symbols of 5 bits: 80 bits
SEALED_PREFIX = "v1."


class SecondFactor(Base):
    """A user's TOTP secret (encrypted); `confirmed_at` None while enrolment is pending."""

    __tablename__ = "user_second_factors"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """One recovery code of a user, as its SHA-256; `used_at` once it has been used."""

    __tablename__ = "user_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TwoFactorError(UserInputError):
    """An enrolment step that cannot be done (already on, nothing pending, wrong code)."""


class SecretUnreadable(PermanentError):
    """The stored secret does not decrypt: MAILER_SECRET_KEY changed, or the row was altered."""


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text, and the otpauth URI as a QR code."""

    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, as authenticator apps show it for typing in."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    def qr_svg(self) -> str:
        """The QR code as an inline SVG element (server-side: no script, no remote image)."""
        code = segno.make(self.uri, error="m")
        svg: str = code.svg_inline(scale=5, dark="#000000", light="#ffffff")
        return svg


class SecretBox:
    """AES-GCM under a key derived from MAILER_SECRET_KEY, bound to one user's id."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailer: totp secrets v1"
        ).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, user_id: int) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _associated(user_id))
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, user_id: int) -> str:
        if not stored.startswith(SEALED_PREFIX):
            raise SecretUnreadable("the stored second factor is in an unknown format")
        try:
            raw = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], _associated(user_id)).decode()
        except (InvalidTag, ValueError):
            raise SecretUnreadable(
                "the stored second factor cannot be decrypted (was MAILER_SECRET_KEY changed?)"
            ) from None


def _associated(user_id: int) -> bytes:
    return f"user:{user_id}".encode()


def _now() -> datetime:
    return datetime.now(UTC)


def _step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _digits(code: str) -> str | None:
    """A TOTP code as typed ("123 456", "123456"), or None when it is not one."""
    compact = re.sub(r"[\s-]", "", code)
    return compact if len(compact) == DIGITS and compact.isascii() and compact.isdigit() else None


def normalise_recovery_code(code: str) -> str | None:
    """A recovery code as typed (any case, spaces or hyphens; O for 0, I or L for 1)."""
    compact = re.sub(r"[\s-]", "", code).lower()
    compact = compact.translate(str.maketrans("oil", "011"))
    if len(compact) != RECOVERY_LENGTH or any(ch not in RECOVERY_ALPHABET for ch in compact):
        return None
    return compact


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _format_recovery(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The time step whose code `code` is, within the allowed drift and later than
    `after` (the last step used), or None."""
    digits = _digits(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = _step(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # every candidate is computed and compared, whatever matches, for even timing
        if secrets.compare_digest(totp.generate_otp(step), digits) and (
            after is None or step > after
        ):
            found = step
    return found


# --- queries that need no key (the CLI's reset, the admin requirement) -----------------------


def second_factor(session: Session, user_id: int) -> SecondFactor | None:
    return session.get(SecondFactor, user_id)


def is_enabled(session: Session, user_id: int) -> bool:
    """Whether the user has a confirmed second factor (a pending enrolment is not one)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(SecondFactor)
            .where(SecondFactor.user_id == user_id, SecondFactor.confirmed_at.is_not(None))
        )
        or 0
    ) > 0


def recovery_codes_left(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def reset(session: Session, user_id: int) -> bool:
    """Remove a user's second factor and recovery codes; whether one was on (confirmed)."""
    was_on = is_enabled(session, user_id)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.execute(delete(SecondFactor).where(SecondFactor.user_id == user_id))
    return was_on


def new_recovery_codes(session: Session, user_id: int) -> list[str]:
    """Ten fresh codes, replacing any earlier ones; returned formatted, to show once."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODES)
    ]
    session.add_all(RecoveryCode(user_id=user_id, code_hash=_hash_recovery(c)) for c in codes)
    session.flush()
    return [_format_recovery(code) for code in codes]


def use_recovery_code(
    session: Session, user_id: int, code: str, now: datetime | None = None
) -> bool:
    """Spend one of the user's unused recovery codes; False if it is none of them."""
    normalised = normalise_recovery_code(code)
    if normalised is None:
        return False
    result = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _hash_recovery(normalised),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now or _now())
    )
    return int(getattr(result, "rowcount", 0) or 0) > 0


class TwoFactor:
    """Enrolment and verification; needs MAILER_SECRET_KEY for the stored secrets."""

    def __init__(self, secret_key: str, issuer: str) -> None:
        self.box = SecretBox(secret_key)
        self.issuer = issuer

    def begin(self, session: Session, user_id: int, email: str) -> Enrolment:
        """The pending enrolment (made now, or the one begun before, so a reload shows
        the same QR code); refused while a confirmed factor is on."""
        row = second_factor(session, user_id)
        if row is not None and row.confirmed_at is not None:
            raise TwoFactorError("two-factor sign-in is already on")
        secret = None
        if row is not None:
            try:
                secret = self.box.open(row.secret, user_id)
            except SecretUnreadable:
                secret = None
        if row is None or secret is None:
            secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
            if row is None:
                row = SecondFactor(user_id=user_id, created_at=_now())
                session.add(row)
            row.secret = self.box.seal(secret, user_id)
            session.flush()
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
            name=email, issuer_name=self.issuer
        )
        return Enrolment(secret=secret, uri=uri)

    def confirm(
        self, session: Session, user_id: int, code: str, now: datetime | None = None
    ) -> list[str]:
        """Turn the pending enrolment on with a code from the app; the recovery codes."""
        now = now or _now()
        row = second_factor(session, user_id)
        if row is None or row.confirmed_at is not None:
            raise TwoFactorError("there is no enrolment waiting; start again")
        step = matching_step(self.box.open(row.secret, user_id), code, now, None)
        if step is None:
            raise TwoFactorError(
                "that code is not the one the app shows; check the app and the clock, and retry"
            )
        row.confirmed_at = now
        row.last_step = step
        return new_recovery_codes(session, user_id)

    def verify_code(
        self, session: Session, user_id: int, code: str, now: datetime | None = None
    ) -> bool:
        """Whether `code` is a current TOTP code not used before, and record its step."""
        now = now or _now()
        row = second_factor(session, user_id)
        if row is None or row.confirmed_at is None:
            return False
        try:
            secret = self.box.open(row.secret, user_id)
        except SecretUnreadable:
            return False  # recovery codes still work; the user enrols again
        step = matching_step(secret, code, now, row.last_step)
        if step is None:
            return False
        result = session.execute(
            update(SecondFactor)
            .where(
                SecondFactor.user_id == user_id,
                or_(SecondFactor.last_step.is_(None), SecondFactor.last_step < step),
            )
            .values(last_step=step)
        )
        session.expire(row)
        return int(getattr(result, "rowcount", 0) or 0) > 0

    def check(
        self, session: Session, user_id: int, code: str, now: datetime | None = None
    ) -> str | None:
        """ "totp" or "recovery" for an accepted code (then spent), None for any other."""
        if _digits(code) is not None:
            return "totp" if self.verify_code(session, user_id, code, now) else None
        if is_enabled(session, user_id) and use_recovery_code(session, user_id, code, now):
            return "recovery"
        return None
