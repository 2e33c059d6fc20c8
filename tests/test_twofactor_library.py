"""The library under two-factor sign-in and password checks: encryption of the TOTP secret,
codes within the drift and never twice, recovery codes, common passwords, reset tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailer.people import passwords, resets, twofactor
from mailer.people.accounts import AccountError, Accounts, check_password
from tests.web_harness import FAST_HASHER

KEY = "test-secret-key-0123456789abcdef"


def test_the_secret_is_sealed_for_one_user_under_one_key() -> None:
    box = twofactor.SecretBox(KEY)
    sealed = box.seal("JBSWY3DPEHPK3PXP", 7)
    assert "JBSWY3DPEHPK3PXP" not in sealed and sealed.startswith("v1.")
    assert box.open(sealed, 7) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(twofactor.SecretUnreadable):
        box.open(sealed, 8)  # copied onto another user's row
    with pytest.raises(twofactor.SecretUnreadable):
        twofactor.SecretBox("another key").open(sealed, 7)  # MAILER_SECRET_KEY changed
    with pytest.raises(twofactor.SecretUnreadable):
        box.open(sealed[:-4] + "AAAA", 7)  # altered


def test_codes_are_accepted_within_one_step_of_drift_and_only_after_the_last_used() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = datetime(2026, 12, 2, 12, 0, 10, tzinfo=UTC)
    step = int(now.timestamp()) // 30
    assert twofactor.matching_step(secret, totp.generate_otp(step), now, None) == step
    assert twofactor.matching_step(secret, totp.generate_otp(step - 1), now, None) == step - 1
    assert twofactor.matching_step(secret, totp.generate_otp(step + 1), now, None) == step + 1
    assert twofactor.matching_step(secret, totp.generate_otp(step + 2), now, None) is None
    assert twofactor.matching_step(secret, totp.generate_otp(step - 2), now, None) is None
    # the last step used, or an older one, is never accepted again
    assert twofactor.matching_step(secret, totp.generate_otp(step), now, step) is None
    assert twofactor.matching_step(secret, totp.generate_otp(step - 1), now, step) is None
    spaced = totp.generate_otp(step)[:3] + " " + totp.generate_otp(step)[3:]
    assert twofactor.matching_step(secret, spaced, now, None) == step
    assert twofactor.matching_step(secret, "12345", now, None) is None
    assert twofactor.matching_step(secret, "１２３４５６", now, None) is None  # fullwidth


def test_recovery_codes_are_read_as_people_type_them() -> None:
    assert twofactor.normalise_recovery_code("ABCD-EFGH-JKMN-PQRS") == "abcdefghjkmnpqrs"
    assert twofactor.normalise_recovery_code(" abcd efgh jkmn pqOs ") == "abcdefghjkmnpq0s"
    assert twofactor.normalise_recovery_code("abcd-efgh-jkmn-pqrI") == "abcdefghjkmnpqr1"
    assert twofactor.normalise_recovery_code("abcd-efgh-jkmn-pqr") is None
    assert twofactor.normalise_recovery_code("abcd-efgh-jkmn-pqru") is None  # no u


def test_common_and_short_passwords_are_refused() -> None:
    assert len(passwords.common_passwords()) > 19_000
    for weak in ("1234567890", "qwertyuiop", "Password123", " basketball "):
        assert passwords.weakness(weak) is not None, weak
        with pytest.raises(AccountError, match="most common"):
            check_password(weak)
    with pytest.raises(AccountError, match="at least 10 characters"):
        check_password("short")
    assert passwords.weakness("x" * 1001) is not None
    assert passwords.weakness("a long test password") is None


def _user(sessions: sessionmaker[Session], email: str = "ed@example.org") -> int:
    with sessions.begin() as session:
        return (
            Accounts(FAST_HASHER)
            .create_user(session, email, "a long test password", role="editor")
            .id
        )


def test_enrolment_codes_and_reset(sessions: sessionmaker[Session]) -> None:
    user_id = _user(sessions)
    factor = twofactor.TwoFactor(KEY, "Newsletter")
    with sessions.begin() as session:
        enrolment = factor.begin(session, user_id, "ed@example.org")
        assert enrolment.uri.startswith("otpauth://totp/Newsletter:ed%40example.org?secret=")
        assert enrolment.qr_svg().startswith("<svg")
        stored = session.get(twofactor.SecondFactor, user_id)
        assert stored is not None and enrolment.secret not in stored.secret
        assert not twofactor.is_enabled(session, user_id)  # pending until a code confirms it
    with sessions.begin() as session:  # a reload shows the same secret
        assert factor.begin(session, user_id, "ed@example.org").secret == enrolment.secret
    totp = pyotp.TOTP(enrolment.secret)
    now = datetime.now(UTC)
    step = int(now.timestamp()) // 30
    with sessions.begin() as session:
        with pytest.raises(twofactor.TwoFactorError):
            step = int(now.timestamp()) // 30
            valid = {totp.generate_otp(s) for s in range(step - 1, step + 2)}
            wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
            factor.confirm(session, user_id, wrong, now)
    with sessions.begin() as session:
        codes = factor.confirm(session, user_id, totp.generate_otp(step), now)
        assert len(codes) == 10 and len(set(codes)) == 10
        assert twofactor.is_enabled(session, user_id)
        with pytest.raises(twofactor.TwoFactorError, match="already on"):
            factor.begin(session, user_id, "ed@example.org")
        hashes = session.scalars(select(twofactor.RecoveryCode.code_hash)).all()
        assert not {c.replace("-", "") for c in codes} & set(hashes)  # only hashes kept
    with sessions.begin() as session:
        assert factor.check(session, user_id, totp.generate_otp(step), now) is None  # used
        assert factor.check(session, user_id, totp.generate_otp(step + 1), now) == "totp"
        assert factor.check(session, user_id, totp.generate_otp(step + 1), now) is None
        assert factor.check(session, user_id, codes[0].upper(), now) == "recovery"
        assert factor.check(session, user_id, codes[0], now) is None  # once only
        assert twofactor.recovery_codes_left(session, user_id) == 9
    with sessions.begin() as session:  # another key: the codes fail, recovery codes still work
        other = twofactor.TwoFactor("a changed secret key", "Newsletter")
        later = now + timedelta(seconds=60)
        assert other.check(session, user_id, totp.generate_otp(step + 2), later) is None
        assert other.check(session, user_id, codes[1], now) == "recovery"
        assert factor.check(session, user_id, totp.generate_otp(step + 2), later) == "totp"
    with sessions.begin() as session:
        assert twofactor.reset(session, user_id) is True
        assert twofactor.reset(session, user_id) is False
        assert twofactor.recovery_codes_left(session, user_id) == 0
        assert factor.check(session, user_id, codes[2], now) is None


def test_reset_tokens_work_once_and_expire(sessions: sessionmaker[Session]) -> None:
    user_id = _user(sessions)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        token = resets.issue(session, user_id, 1800, now)
        old = resets.issue(session, user_id, 60, now - timedelta(minutes=5))
    with sessions.begin() as session:
        assert resets.user_of(session, token) == user_id
        assert resets.user_of(session, old) is None  # expired
        assert resets.user_of(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert resets.user_of(session, token, now + timedelta(seconds=1801)) is None
        assert resets.consume(session, token) == user_id
    with sessions.begin() as session:
        assert resets.consume(session, token) is None
        assert session.scalars(select(resets.PasswordReset)).all() == []
