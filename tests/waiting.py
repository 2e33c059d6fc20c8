"""Waiting without assuming how fast this machine is.

A loaded machine (the suite under `./run test-busy`, or eight people's tests on two
cores) takes many seconds to start a Python process or to answer a poll. So tests
wait for a sign of readiness, with a generous safety limit that only stops a test
that is stuck; and a scenario that needs something to happen *before* a due time
derives its lead from how long this test's own steps took, and runs again with a
longer lead when a slow moment broke its premise, instead of failing, or passing
without having tested what it says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

# Any single wait gives up after this long: a loaded machine is slow, not stuck.
LIMIT = 300.0
# The shortest lead for a due time, however fast the steps before it were.
MIN_LEAD = 3.0
# How often a scenario is tried with a longer lead before the test fails.
ATTEMPTS = 4


def wait_until(condition: Callable[[], bool], what: str, limit: float = LIMIT) -> None:
    """Poll `condition` until it holds; fail naming `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit:.0f} s")
        time.sleep(0.1)


class Pace:
    """How long this test's slow steps (a process start-up, a command) have taken,
    and the leads a due time needs after that many more such steps."""

    def __init__(self) -> None:
        self.slowest = 0.0

    def took(self, seconds: float) -> None:
        self.slowest = max(self.slowest, seconds)

    def timed(self) -> Callable[[], None]:
        """Start timing a step; call the result when the step is done."""
        begun = time.monotonic()
        return lambda: self.took(time.monotonic() - begun)

    def lead(self, steps: int) -> float:
        """Seconds ahead for a due time that `steps` more slow steps must precede:
        twice what they took at their slowest so far."""
        return max(MIN_LEAD, 2.0 * steps * self.slowest)

    def attempts(self, steps: int, premise: str) -> Iterator[float]:
        """Leads for a scenario: the first from `lead(steps)`, each next at least
        twice the last. The test breaks out once `premise` held; when it never does,
        the test fails saying so."""
        lead = self.lead(steps)
        for _ in range(ATTEMPTS):
            yield lead
            lead = max(2 * lead, self.lead(steps))
        raise AssertionError(
            f"{premise} did not hold in {ATTEMPTS} attempts (last lead {lead / 2:.0f} s): "
            "the machine is slower than any lead tried"
        )
