"""Accounts: argon2 hashes, roles, and login throttling per account and per address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailer.people import accounts
from mailer.people.accounts import (
    AccountError,
    Accounts,
    InvalidCredentials,
    LoginThrottled,
    ThrottlePolicy,
)

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture
def acc() -> Accounts:
    return Accounts(FAST, ThrottlePolicy(free_per_account=3, free_per_ip=6))


def test_create_hashes_with_argon2_and_authenticates(
    sessions: sessionmaker[Session], acc: Accounts
) -> None:
    with sessions.begin() as s:
        acc.create_user(s, "Editor@Example.org", "correct horse battery", role="editor")
    with sessions.begin() as s:
        user = accounts.get_user(s, "editor@example.org")
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert not user.is_admin
        ok = acc.authenticate(s, "EDITOR@example.org", "correct horse battery", ip="10.0.0.1")
        assert ok.id == user.id and ok.last_login_at is not None
    with sessions.begin() as s, pytest.raises(InvalidCredentials):
        acc.authenticate(s, "editor@example.org", "wrong password!!", ip="10.0.0.1")
    with sessions.begin() as s, pytest.raises(InvalidCredentials):
        acc.authenticate(s, "nobody@example.org", "whatever password", ip="10.0.0.1")


def test_bad_input_is_refused_clearly(sessions: sessionmaker[Session], acc: Accounts) -> None:
    with sessions.begin() as s:
        with pytest.raises(AccountError, match="at least 10"):
            acc.create_user(s, "a@example.org", "short", role="editor")
        with pytest.raises(AccountError, match="unknown role 'boss'"):
            acc.create_user(s, "a@example.org", "long enough pw", role="boss")
        with pytest.raises(AccountError, match="not a valid email"):
            acc.create_user(s, "not-an-address", "long enough pw", role="admin")
        with pytest.raises(AccountError, match=r"name: .*line break"):
            acc.create_user(
                s, "a@example.org", "long enough pw", role="admin", name="Ed\r\nBcc: x@y.org"
            )
        with pytest.raises(AccountError, match=r"name: .*200"):
            acc.create_user(s, "a@example.org", "long enough pw", role="admin", name="N" * 201)
        acc.create_user(s, "a@example.org", "long enough pw", role="admin")
        with pytest.raises(AccountError, match="already exists"):
            acc.create_user(s, "A@example.org", "long enough pw", role="admin")
        with pytest.raises(AccountError, match="last admin"):
            accounts.remove_user(s, "a@example.org")


def test_account_is_blocked_after_repeated_failures_even_with_right_password(
    sessions: sessionmaker[Session], acc: Accounts
) -> None:
    with sessions.begin() as s:
        acc.create_user(s, "ed@example.org", "the right password", role="editor")
    for i in range(3):
        with sessions.begin() as s, pytest.raises(InvalidCredentials):
            acc.authenticate(s, "ed@example.org", "guess", ip=f"10.0.0.{i}", now=T0)
    # Blocked for 30 s (the base), whatever the address and even with the right password.
    with sessions.begin() as s, pytest.raises(LoginThrottled) as blocked:
        acc.authenticate(s, "ed@example.org", "the right password", ip="10.9.9.9", now=T0)
    assert blocked.value.retry_after == 30
    later = T0 + timedelta(seconds=31)
    with sessions.begin() as s, pytest.raises(InvalidCredentials):
        acc.authenticate(s, "ed@example.org", "guess again", ip="10.0.0.1", now=later)
    # The fourth failure doubles the block.
    with sessions.begin() as s, pytest.raises(LoginThrottled) as blocked:
        acc.authenticate(s, "ed@example.org", "the right password", ip="10.0.0.1", now=later)
    assert blocked.value.retry_after == 60
    after = later + timedelta(seconds=61)
    with sessions.begin() as s:
        acc.authenticate(s, "ed@example.org", "the right password", ip="10.0.0.1", now=after)
    # Success clears the account's count.
    with sessions.begin() as s, pytest.raises(InvalidCredentials):
        acc.authenticate(s, "ed@example.org", "one slip", ip="10.0.0.1", now=after)
    with sessions.begin() as s:
        acc.authenticate(s, "ed@example.org", "the right password", ip="10.0.0.1", now=after)


def test_one_address_guessing_many_accounts_is_blocked(
    sessions: sessionmaker[Session], acc: Accounts
) -> None:
    with sessions.begin() as s:
        acc.create_user(s, "victim@example.org", "the right password", role="admin")
    for i in range(6):
        with sessions.begin() as s, pytest.raises(InvalidCredentials):
            acc.authenticate(s, f"user{i}@example.org", "guess", ip="203.0.113.7", now=T0)
    with sessions.begin() as s, pytest.raises(LoginThrottled):
        acc.authenticate(s, "victim@example.org", "the right password", ip="203.0.113.7", now=T0)
    with sessions.begin() as s:  # another address is not affected
        acc.authenticate(s, "victim@example.org", "the right password", ip="198.51.100.1", now=T0)


def test_set_password_and_remove(sessions: sessionmaker[Session], acc: Accounts) -> None:
    with sessions.begin() as s:
        acc.create_user(s, "root@example.org", "first password", role="admin")
        acc.create_user(s, "ed@example.org", "first password", role="editor")
    with sessions.begin() as s:
        acc.set_password(s, "ed@example.org", "second password")
    with sessions.begin() as s:
        acc.authenticate(s, "ed@example.org", "second password", ip="10.0.0.1")
        with pytest.raises(InvalidCredentials):
            acc.authenticate(s, "ed@example.org", "first password", ip="10.0.0.1")
    with sessions.begin() as s:
        accounts.remove_user(s, "ed@example.org")
        assert [u.email for u in accounts.list_users(s)] == ["root@example.org"]
        with pytest.raises(accounts.UnknownUser):
            accounts.remove_user(s, "ed@example.org")


def test_migration_0003_downgrades_and_upgrades_again(engine: Engine) -> None:
    from sqlalchemy import inspect

    from mailer import db

    assert {"users", "login_failures"} <= set(inspect(engine).get_table_names())
    db.downgrade(engine, "0002")
    assert not {"users", "login_failures"} & set(inspect(engine).get_table_names())
    db.upgrade(engine)
    assert {"users", "login_failures"} <= set(inspect(engine).get_table_names())
