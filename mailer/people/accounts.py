"""Web app accounts: users with a role, argon2 password hashes, and login throttling.

Editors work on issues and campaigns; admins may also manage subscribers, lists,
partners and users. Failed logins are counted per account and per client address in
the database (so several web processes share the count) and, past a few free tries,
block further attempts for a time that doubles with each failure. A wrong second-factor
code counts like a wrong password, and password-reset requests are counted the same
way under keys of their own (`mailer.people.twofactor`, `mailer.people.resets`).
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Boolean, DateTime, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from mailer.errors import PermanentError, TemporaryError, UserInputError
from mailer.people import passwords
from subscribers.base import Base

MIN_PASSWORD_LENGTH = passwords.MIN_PASSWORD_LENGTH
MAX_NAME_LENGTH = 200  # the column's size


class Role(StrEnum):
    EDITOR = "editor"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default=Role.EDITOR.value)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


class LoginFailure(Base):
    """Failed logins counted under one key: `account:<email>` or `ip:<address>`."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountError(UserInputError):
    """A user name, role or password given by an operator is not acceptable."""


class UnknownUser(AccountError):
    pass


class InvalidCredentials(PermanentError):
    """Wrong address or password; deliberately does not say which."""

    def __init__(self) -> None:
        super().__init__("wrong email address or password")


class LoginThrottled(TemporaryError):
    """Too many failed logins for this account or from this address; wait and retry."""

    def __init__(self, retry_after: float, what: str = "failed logins") -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many {what}; try again in {self.retry_after} seconds")


@dataclass(frozen=True)
class ThrottlePolicy:
    """Free attempts per key, then a block of `base` seconds doubling up to `cap`."""

    free_per_account: int = 5
    free_per_ip: int = 20
    base_seconds: float = 30.0
    cap_seconds: float = 900.0
    forget_after: timedelta = timedelta(hours=1)

    def block_for(self, failures: int, free: int) -> float:
        if failures < free:
            return 0.0
        return float(min(self.base_seconds * 2 ** (failures - free), self.cap_seconds))


# Reset emails: three per address and ten per client address, then a quarter of an
# hour's wait, doubling up to a day; every request counts, not only failed ones.
RESET_POLICY = ThrottlePolicy(
    free_per_account=3,
    free_per_ip=10,
    base_seconds=900.0,
    cap_seconds=86400.0,
    forget_after=timedelta(hours=24),
)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    """User management and authentication over a database session.

    The hasher is a parameter so tests and the CLI share one instance (argon2's
    defaults cost ~50 ms and 64 MiB per hash, on purpose).
    """

    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        policy: ThrottlePolicy | None = None,
        reset_policy: ThrottlePolicy | None = None,
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self.policy = policy or ThrottlePolicy()
        self.reset_policy = reset_policy or RESET_POLICY
        self._dummy_hash = self.hasher.hash("not a real password, only for even timing")

    # --- users -----------------------------------------------------------------

    def create_user(
        self, session: Session, email: str, password: str, *, role: str, name: str = ""
    ) -> User:
        address = normalise_email(email)
        role = parse_role(role)
        check_password(password)
        if find_user(session, address) is not None:
            raise AccountError(f"a user with the address {address} already exists")
        user = User(
            email=address,
            name=check_name(name),
            role=role,
            password_hash=self.hasher.hash(password),
            active=True,
            created_at=_now(),
        )
        session.add(user)
        session.flush()
        return user

    def set_password(self, session: Session, email: str, password: str) -> User:
        user = get_user(session, email)
        check_password(password)
        user.password_hash = self.hasher.hash(password)
        session.execute(delete(LoginFailure).where(LoginFailure.key == _account_key(user.email)))
        return user

    # --- login -----------------------------------------------------------------

    def authenticate(
        self,
        session: Session,
        email: str,
        password: str,
        *,
        ip: str,
        now: datetime | None = None,
        finish: bool = True,
    ) -> User:
        """The user for these credentials, or InvalidCredentials / LoginThrottled.

        While an account or address is blocked the password is not even checked, so
        guessing cannot continue at full speed; the caller commits the session either way.
        With `finish=False` (a second factor is still to come) the account's failure
        count stays, so a right password cannot wipe out the wrong codes before it;
        `finish_login` completes the sign-in once the code is right.
        """
        now = now or _now()
        address = email.strip().lower()
        self.check_throttle(session, address, ip, now)
        user = find_user(session, address)
        if user is None or not user.active:
            self._verify(self._dummy_hash, password)
            self.record_failure(session, address, ip, now)
            raise InvalidCredentials()
        if not self._verify(user.password_hash, password):
            self.record_failure(session, address, ip, now)
            raise InvalidCredentials()
        if self.hasher.check_needs_rehash(user.password_hash):
            user.password_hash = self.hasher.hash(password)
        if finish:
            self.finish_login(session, user, now)
        return user

    def finish_login(self, session: Session, user: User, now: datetime | None = None) -> None:
        """Every factor was right: the account's failures are forgotten."""
        session.execute(delete(LoginFailure).where(LoginFailure.key == _account_key(user.email)))
        user.last_login_at = now or _now()

    def _login_keys(self, email: str, ip: str) -> dict[str, int]:
        return {
            _account_key(email): self.policy.free_per_account,
            _ip_key(ip): self.policy.free_per_ip,
        }

    def check_throttle(
        self, session: Session, email: str, ip: str, now: datetime | None = None
    ) -> None:
        """LoginThrottled while the account or the client address is blocked."""
        _check_blocks(session, self._login_keys(email, ip), now or _now(), "failed logins")

    def record_failure(
        self, session: Session, email: str, ip: str, now: datetime | None = None
    ) -> None:
        """A wrong password or second-factor code, counted for the account and the address."""
        self._record_failures(session, self._login_keys(email, ip), now or _now())

    def count_reset_request(
        self, session: Session, email: str, ip: str, now: datetime | None = None
    ) -> None:
        """Count a password-reset request for the address asked about (whether or not it
        has an account, so the answer is the same) and the client's address; raises
        LoginThrottled past `reset_policy`'s allowance, before anything is sent."""
        now = now or _now()
        address = email.strip().lower()
        keys = {
            "reset:" + _account_key(address): self.reset_policy.free_per_account,
            "reset:" + _ip_key(ip): self.reset_policy.free_per_ip,
        }
        _check_blocks(session, keys, now, "password reset requests")
        self._record_failures(session, keys, now, self.reset_policy)

    def verify(self, user: User, password: str) -> bool:
        """Whether `password` is this user's (for re-authentication, not for login)."""
        return self._verify(user.password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _record_failures(
        self,
        session: Session,
        keys: dict[str, int],
        now: datetime,
        policy: ThrottlePolicy | None = None,
    ) -> None:
        policy = policy or self.policy
        for key, free in keys.items():
            row = session.get(LoginFailure, key)
            if row is None:
                row = LoginFailure(key=key, failures=0, last_failure_at=now)
                session.add(row)
            elif now - _utc(row.last_failure_at) > policy.forget_after:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            seconds = policy.block_for(row.failures, free)
            row.blocked_until = now + timedelta(seconds=seconds) if seconds else None
        session.flush()


def _check_blocks(session: Session, keys: dict[str, int], now: datetime, what: str) -> None:
    for key in keys:
        row = session.get(LoginFailure, key)
        if row is not None and row.blocked_until is not None and _utc(row.blocked_until) > now:
            raise LoginThrottled((_utc(row.blocked_until) - now).total_seconds(), what)


def _account_key(email: str) -> str:
    """The throttle's key for an address; one too long for the key column is hashed (no
    account has such an address, but the guesses are counted all the same)."""
    address = email.strip().lower()
    if len(address) > 320:
        address = "sha256:" + hashlib.sha256(address.encode()).hexdigest()
    return f"account:{address}"


def _ip_key(ip: str) -> str:
    return f"ip:{ip}"


def normalise_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"not a valid email address: {email!r} ({exc})") from None


def parse_role(role: str) -> str:
    try:
        return Role(role.strip().lower()).value
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role {role!r}; choose one of {choices}") from None


def check_name(name: str) -> str:
    """The display name, stripped: it goes into the To header of a test send."""
    name = name.strip()
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise AccountError("name: a line break or other control character is not allowed")
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"name: at most {MAX_NAME_LENGTH} characters")
    return name


def check_password(password: str) -> None:
    """Long enough and not one of the most common (`mailer.people.passwords`); every way of
    setting a password (CLI, Users page, Account page, reset link) comes through here."""
    problem = passwords.weakness(password)
    if problem is not None:
        raise AccountError(problem)


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise UnknownUser(f"no user with the address {email.strip()}")
    return user


def get_user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def count_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(User).where(User.role == Role.ADMIN.value, User.active)
        )
        or 0
    )


def remove_user(session: Session, email: str) -> None:
    """Delete a user; refuses to remove the last admin, which would lock everyone out."""
    user = get_user(session, email)
    if user.is_admin and count_admins(session) <= 1:
        raise AccountError("refusing to remove the last admin; create another admin first")
    session.delete(user)
    session.execute(delete(LoginFailure).where(LoginFailure.key == _account_key(user.email)))


def set_role(session: Session, email: str, role: str) -> User:
    user = get_user(session, email)
    role = parse_role(role)
    if user.is_admin and role != Role.ADMIN.value and count_admins(session) <= 1:
        raise AccountError("refusing to demote the last admin")
    user.role = role
    return user
