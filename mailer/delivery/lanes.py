"""The worker's connection lanes: one SMTP connection each and the message it is
carrying, moved along from one thread as each server answers, found with poll(2).

A lane goes idle -> envelope (MAIL/RCPT/DATA written, replies due) -> accepted
(waiting for its rate-limit slot) -> verdict (message and final dot written, the
server's verdict due) -> idle. `answered` waits for any of the busy lanes' servers:
a slow reply holds up only its own connection, and there are no threads to hand
work between (a thread per connection cost three times the CPU per message: the
GIL changing hands on every reply).
"""

from __future__ import annotations

import selectors
import time
from enum import Enum

from mailer.delivery.ledger.claims import Job
from mailer.delivery.message import Outgoing
from mailer.delivery.transport import Transport

# poll(2) needs no set-up calls per wait, unlike epoll; every Unix has it.
_Selector = getattr(selectors, "PollSelector", selectors.DefaultSelector)


class Step(Enum):
    IDLE = "idle"
    ENVELOPE = "envelope"  # envelope written; its replies are due
    ACCEPTED = "accepted"  # envelope accepted; the message waits for its rate-limit slot
    VERDICT = "verdict"  # message and final dot written; the verdict is due


class Lane:
    """One connection and the message it is carrying."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.step = Step.IDLE
        self.job: Job | None = None
        self.message: Outgoing | None = None
        self.deadline = 0.0
        # Its last accepted message's outcome is committed once this many groups are.
        self.needs = 0

    def hold(self, job: Job, message: Outgoing, step: Step, timeout: float) -> None:
        self.job, self.message, self.step = job, message, step
        self.deadline = time.monotonic() + timeout

    def release(self) -> None:
        self.step = Step.IDLE

    def overdue(self) -> bool:
        return time.monotonic() > self.deadline


def answered(busy: list[Lane], wait_at_most: float, also: int | None = None) -> list[Lane]:
    """The busy lanes whose next step can run now, waiting (up to a second, or until
    the earliest deadline) for at least one server to answer, or for the socket `also`
    (the recorder's) to become readable."""
    ready = [lane for lane in busy if lane.transport.awaiting() is None]
    if ready:
        return ready
    sockets: dict[int, list[Lane]] = {}
    for lane in busy:
        fd = lane.transport.awaiting()
        if fd is not None:
            sockets.setdefault(fd, []).append(lane)
    earliest = min(lane.deadline for lane in busy) - time.monotonic()
    timeout = max(0.0, min(1.0, earliest, wait_at_most or 1.0))
    with _Selector() as waiting:
        for fd in sockets:
            waiting.register(fd, selectors.EVENT_READ)
        if also is not None and also not in sockets:
            waiting.register(also, selectors.EVENT_READ)
        events = waiting.select(timeout)
        return [lane for key, _ in events for lane in sockets.get(int(key.fd), ())]


def wait_readable(fd: int, timeout: float) -> None:
    """Wait (at most `timeout` seconds) until `fd` can be read."""
    with _Selector() as waiting:
        waiting.register(fd, selectors.EVENT_READ)
        waiting.select(timeout)
