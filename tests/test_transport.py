"""The SMTP transport against a real aiosmtpd server: replies, faults, TLS, login, limits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mailer.delivery.ratelimit import RateLimiter
from mailer.delivery.smtp import SMTPTransport
from mailer.delivery.transport import (
    AuthenticationError,
    ConnectionFailed,
    MemoryTransport,
    PermanentSMTPError,
    TemporarySMTPError,
)
from tests.smtpd import SMTPTestServer, free_port, tls_contexts

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n.dot line\r\n"


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def server(request: pytest.FixtureRequest):
    """The test server, without and with PIPELINING: both client paths see every fault."""
    with SMTPTestServer(pipelining=request.param) as running:
        yield running


def transport_for(server: SMTPTestServer, **options) -> SMTPTransport:
    return SMTPTransport(server.host, server.port, timeout=5, **options)


def test_sends_and_reuses_one_connection(server: SMTPTestServer) -> None:
    transport = transport_for(server)
    for index in range(3):
        reply = transport.send("a@example.org", [f"b{index}@example.org"], MESSAGE)
        assert reply.code == 250 and "queued" in reply.text
    assert transport._smtp is not None
    assert transport._smtp.has_extn("pipelining") is server.pipelining  # the path under test
    transport.close()
    assert server.count() == 3
    assert len({m.connection for m in server.messages}) == 1
    assert server.messages[0].data.endswith(b"Hello\r\n.dot line\r\n")  # dot-stuffing undone


def test_reconnects_after_messages_per_connection(server: SMTPTestServer) -> None:
    transport = transport_for(server, messages_per_connection=2)
    for index in range(5):
        transport.send("a@example.org", [f"b{index}@example.org"], MESSAGE)
    transport.close()
    assert len({m.connection for m in server.messages}) == 3


def test_4xx_is_temporary_and_the_connection_stays_usable(server: SMTPTestServer) -> None:
    server.defer("late@example.org", reply="451 4.7.1 Greylisted, try later")
    transport = transport_for(server)
    with pytest.raises(TemporarySMTPError) as caught:
        transport.send("a@example.org", ["late@example.org"], MESSAGE)
    assert caught.value.code == 451 and caught.value.enhanced == "4.7.1"
    assert caught.value.reply == "451 4.7.1 Greylisted, try later"
    transport.send("a@example.org", ["late@example.org"], MESSAGE)
    transport.send("a@example.org", ["other@example.org"], MESSAGE)
    transport.close()
    assert server.arrivals() == {"late@example.org": 1, "other@example.org": 1}
    assert len({m.connection for m in server.messages}) == 1


@pytest.mark.parametrize(
    ("reply", "no_such_user"),
    [
        ("550 5.1.1 <x@example.org>: Recipient address rejected: User unknown", True),
        ("553 5.1.3 Bad recipient address syntax", True),
        ("550 No such user here", True),
        ("550 5.7.1 Message rejected as spam", False),
        ("552 5.2.2 Mailbox full", False),
    ],
)
def test_5xx_is_permanent_and_5_1_x_means_no_such_user(
    server: SMTPTestServer, reply: str, no_such_user: bool
) -> None:
    server.reject("x@example.org", reply)
    transport = transport_for(server)
    with pytest.raises(PermanentSMTPError) as caught:
        transport.send("a@example.org", ["x@example.org"], MESSAGE)
    assert caught.value.no_such_user is no_such_user
    assert caught.value.reply == reply
    transport.send("a@example.org", ["y@example.org"], MESSAGE)  # still usable
    transport.close()


def test_dropped_connection_mid_data_is_temporary_then_reconnects(
    server: SMTPTestServer,
) -> None:
    server.drop_during_data("x@example.org")
    transport = transport_for(server)
    with pytest.raises(ConnectionFailed, match="lost"):
        transport.send("a@example.org", ["x@example.org"], MESSAGE)
    transport.send("a@example.org", ["x@example.org"], MESSAGE)
    transport.close()
    assert server.arrivals() == {"x@example.org": 1}


def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()
    transport = SMTPTransport("127.0.0.1", port, timeout=2)
    with pytest.raises(ConnectionFailed, match=f"cannot connect to SMTP server 127.0.0.1:{port}"):
        transport.probe()
    with pytest.raises(TemporarySMTPError):
        transport.send("a@example.org", ["b@example.org"], MESSAGE)


def test_login_wrong_and_right() -> None:
    with SMTPTestServer(login=("news", "s3cret")) as server:
        wrong = transport_for(server, username="news", password="nope")
        with pytest.raises(AuthenticationError, match=r"refused the login of 'news': 535"):
            wrong.send("a@example.org", ["b@example.org"], MESSAGE)
        right = transport_for(server, username="news", password="s3cret")
        right.send("a@example.org", ["b@example.org"], MESSAGE)
        right.close()
        assert server.count() == 1


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_modes(tmp_path: Path, mode: str) -> None:
    server_context, client_context = tls_contexts(tmp_path)
    options = (
        {"starttls": server_context} if mode == "starttls" else {"implicit_tls": server_context}
    )
    with SMTPTestServer(**options) as server:  # type: ignore[arg-type]
        transport = transport_for(server, security=mode, ssl_context=client_context)
        transport.send("a@example.org", ["b@example.org"], MESSAGE)
        transport.close()
        assert server.count() == 1
        # A client that does not trust the certificate refuses to talk.
        untrusting = transport_for(server, security=mode)
        with pytest.raises(ConnectionFailed, match="TLS"):
            untrusting.probe()


def test_starttls_asked_of_a_server_without_it(server: SMTPTestServer) -> None:
    transport = transport_for(server, security="starttls")
    with pytest.raises(AuthenticationError, match="STARTTLS"):
        transport.probe()


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limit_per_second() -> None:
    fake = FakeTime()
    limiter = RateLimiter(per_second=5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(25):
        limiter.acquire()
    assert 3.9 <= fake.now <= 4.1  # 5 at once (the burst), then 5 per second


def test_rate_limit_per_hour_and_stop() -> None:
    fake = FakeTime()
    limiter = RateLimiter(per_hour=3, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        limiter.acquire()
    assert fake.now == 0
    limiter.acquire()
    assert fake.now >= 3600
    stop = threading.Event()
    stop.set()
    blocked = RateLimiter(per_hour=1, clock=fake.clock, sleep=fake.sleep)
    assert blocked.acquire(stop)
    assert not blocked.acquire(stop)  # would wait an hour; stop wins


def test_rate_limit_is_shared_by_connections(server: SMTPTestServer) -> None:
    fake = FakeTime()
    limiter = RateLimiter(per_hour=2, clock=fake.clock, sleep=fake.sleep)
    first, second = (
        transport_for(server, limiter=limiter),
        transport_for(server, limiter=limiter),
    )
    first.send("a@example.org", ["b@example.org"], MESSAGE)
    second.send("a@example.org", ["c@example.org"], MESSAGE)
    assert fake.now == 0
    first.send("a@example.org", ["d@example.org"], MESSAGE)
    assert fake.now >= 3600
    first.close()
    second.close()


def test_memory_transport() -> None:
    def answer(recipient: str) -> None:
        if recipient == "bad@example.org":
            raise PermanentSMTPError(550, "5.1.1 no such user")

    transport = MemoryTransport(answer)
    assert transport.send("a@example.org", ["b@example.org"], MESSAGE).code == 250
    with pytest.raises(PermanentSMTPError):
        transport.send("a@example.org", ["bad@example.org"], MESSAGE)
    assert [s.recipients for s in transport.sent] == [("b@example.org",)]


def test_the_three_steps_interleave_over_several_connections(server: SMTPTestServer) -> None:
    """What a worker does in one round: every envelope, then every message, then every
    verdict; nothing is accepted before its connection's `transfer`."""
    transports = [transport_for(server) for _ in range(3)]
    for index, transport in enumerate(transports):
        transport.begin("a@example.org", [f"r{index}@example.org"])
    assert server.count() == 0
    for transport in transports:
        transport.transfer(MESSAGE)
    replies = [transport.finish() for transport in transports]
    assert [reply.code for reply in replies] == [250, 250, 250]
    assert server.arrivals() == {f"r{index}@example.org": 1 for index in range(3)}
    assert len({m.connection for m in server.messages}) == 3
    for transport in transports:
        transport.close()


def test_a_refusal_at_the_final_dot_is_a_failure_not_a_send(server: SMTPTestServer) -> None:
    """A server may take the whole message and then refuse it (content filter, full disk):
    that reply decides, and the connection carries on."""
    server.refuse_message("spam@example.org", "554 5.7.1 Message rejected as spam")
    server.refuse_message("full@example.org", "452 4.3.1 Insufficient system storage")
    transport = transport_for(server)
    with pytest.raises(PermanentSMTPError) as permanent:
        transport.send("a@example.org", ["spam@example.org"], MESSAGE)
    assert permanent.value.code == 554 and not permanent.value.no_such_user
    with pytest.raises(TemporarySMTPError) as temporary:
        transport.send("a@example.org", ["full@example.org"], MESSAGE)
    assert temporary.value.code == 452
    transport.send("a@example.org", ["full@example.org"], MESSAGE)  # the next try gets in
    transport.close()
    assert server.arrivals() == {"full@example.org": 1}
    assert len({m.connection for m in server.messages}) == 1


def test_a_step_out_of_order_is_a_connection_failure() -> None:
    transport = SMTPTransport("127.0.0.1", free_port(), timeout=2)
    with pytest.raises(ConnectionFailed):
        transport.transfer(MESSAGE)
    with pytest.raises(ConnectionFailed):
        transport.finish()
    memory = MemoryTransport()
    with pytest.raises(ConnectionFailed):
        memory.finish()


def test_try_acquire_takes_a_free_slot_or_says_how_long_to_wait() -> None:
    fake = FakeTime()
    limiter = RateLimiter(per_second=2, clock=fake.clock, sleep=fake.sleep)
    assert [limiter.try_acquire() for _ in range(2)] == [0.0, 0.0]  # the burst
    wait = limiter.try_acquire()
    assert 0.4 <= wait <= 0.5
    fake.now += wait
    assert limiter.try_acquire() == 0.0
    assert RateLimiter().try_acquire() == 0.0


def test_wait_for_says_when_slots_are_free_and_takes_none() -> None:
    fake = FakeTime()
    limiter = RateLimiter(per_second=2, per_hour=3, clock=fake.clock, sleep=fake.sleep)
    assert limiter.wait_for(2) == 0.0 and limiter.wait_for(2) == 0.0  # nothing taken
    assert limiter.wait_for(3) > 0  # more than the burst is never free at once
    assert limiter.try_acquire() == 0.0
    assert 0.4 <= limiter.wait_for(2) <= 0.5  # one left; the second comes in half a second
    fake.now += 0.5
    assert limiter.wait_for(2) == 0.0
    assert limiter.try_acquire() == 0.0 and limiter.try_acquire() == 0.0
    fake.now += 10
    assert limiter.wait_for(1) == 3600 - 10.5  # the hourly quota of 3 is spent
    assert RateLimiter().wait_for(100) == 0.0


class OpenFirst(RateLimiter):
    """Fails the test if a slot is taken while the transport has no open connection."""

    transport: SMTPTransport | None = None

    def try_acquire(self) -> float:
        assert self.transport is not None and self.transport._smtp is not None
        return super().try_acquire()


def test_send_takes_its_slot_once_the_connection_is_open(server: SMTPTestServer) -> None:
    """Opening a connection can take longer than a slot lasts: the slot is taken after."""
    limiter = OpenFirst(per_second=100)
    transport = transport_for(server, limiter=limiter, messages_per_connection=1)
    limiter.transport = transport
    for index in range(3):  # each on a new connection
        transport.send("a@example.org", [f"b{index}@example.org"], MESSAGE)
    transport.close()
    assert server.count() == 3 and len({m.connection for m in server.messages}) == 3


def test_international_address_needs_smtputf8() -> None:
    message = "From: a@example.org\r\nTo: 测试@example.cn\r\n\r\nHello\r\n".encode()
    with SMTPTestServer() as server:
        transport = transport_for(server)
        transport.send("a@example.org", ["测试@example.cn"], message, smtputf8=True)
        transport.close()
        assert server.arrivals() == {"测试@example.cn": 1}
    with SMTPTestServer(smtputf8=False) as server:
        transport = transport_for(server)
        with pytest.raises(PermanentSMTPError, match="SMTPUTF8") as caught:
            transport.send("a@example.org", ["测试@example.cn"], message, smtputf8=True)
        assert not caught.value.no_such_user
        transport.send("a@example.org", ["b@example.org"], MESSAGE)  # connection still fine
        transport.close()
