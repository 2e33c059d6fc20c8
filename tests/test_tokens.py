from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.delivery.tokens import InvalidToken, make_token, read_token
from mailer.errors import PermanentError

SECRET = "test-secret-key-0123456789abcdef"


@given(st.integers(min_value=0, max_value=2**62))
def test_round_trip(subscriber_id: int) -> None:
    token = make_token(SECRET, subscriber_id)
    assert read_token(SECRET, token) == subscriber_id
    assert token.isascii() and "/" not in token and "=" not in token


def test_tokens_differ_per_subscriber_and_secret() -> None:
    assert make_token(SECRET, 1) != make_token(SECRET, 2)
    assert make_token(SECRET, 1) != make_token("another-secret", 1)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("1.", "2.", 1),  # another subscriber's id, same signature
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # altered signature
        lambda t: t[:-3],  # truncated
        lambda t: t.split(".")[0],  # id only
        lambda t: "01." + t.split(".")[1],  # same number, other spelling
        lambda t: "",
        lambda t: "x.y",
        lambda t: "1.é",
    ],
)
def test_forged_or_altered_tokens_are_refused(mutate) -> None:
    token = make_token(SECRET, 1)
    with pytest.raises(InvalidToken):
        read_token(SECRET, mutate(token))


def test_wrong_secret_is_refused_and_error_is_permanent() -> None:
    with pytest.raises(PermanentError):
        read_token("other", make_token(SECRET, 7))
