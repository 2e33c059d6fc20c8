"""Sending rate limits shared by every connection of a worker: per second and per hour.

Relays often cap senders ("at most 10 messages per second, 20,000 per hour"); going
over gets the account throttled or blocked. A token bucket smooths the per-second
rate (a burst of one second's worth, then the rate); a fixed one-hour window counts
the hourly quota.

A relay counts messages as they arrive, so a slot must be taken at the moment a
message is handed to the server, not when its sending starts: opening a connection
(TLS, login) can take longer than the slots it would otherwise hold, and the
messages held back then arrive together. The worker asks `wait_for` before it
writes an envelope (so none is written that no slot awaits) and takes the slot
with `try_acquire` just before it writes the message itself.

The limits are per limiter, and every worker process has its own: with several
workers each takes a share of the relay's limit (README, "Rate limits", says why
not one bucket in the database).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`acquire()` blocks until one more message may go out. 0 disables a limit."""

    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.per_second = per_second
        self.per_hour = per_hour
        self._clock = clock
        self._interrupted = threading.Event()
        self._sleep = sleep or self._interrupted.wait  # default: a sleep `interrupt()` cuts short
        self._lock = threading.Lock()
        self._tokens = max(per_second, 1.0)
        self._refilled = clock()
        self._hour_started = clock()
        self._hour_count = 0

    def interrupt(self) -> None:
        """Make every waiting and later `acquire()` return False (the worker is stopping)."""
        self._interrupted.set()

    def clear(self) -> None:
        self._interrupted.clear()

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0 and self.per_hour <= 0

    def _refill(self, now: float) -> None:
        if self.per_hour > 0 and now - self._hour_started >= 3600:
            self._hour_started, self._hour_count = now, 0
        if self.per_second > 0:
            burst = max(self.per_second, 1.0)
            self._tokens = min(burst, self._tokens + (now - self._refilled) * self.per_second)
            self._refilled = now

    def _wait(self, now: float, slots: int) -> float:
        """Seconds until `slots` slots are free (0.0: they are now), after `_refill`."""
        if self.per_hour > 0 and self._hour_count + slots > self.per_hour:
            return max(self._hour_started + 3600 - now, 1e-4)
        if self.per_second > 0 and self._tokens < slots - 1e-9:  # float sums never quite add up
            # More slots than the burst holds are never free at once: the hint is then
            # only a pause before asking again (messages begun meanwhile take theirs).
            return max((slots - self._tokens) / self.per_second, 1e-4)
        return 0.0

    def try_acquire(self) -> float:
        """Take a slot if one is free now (0.0); otherwise the seconds until one may be."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            self._refill(now)
            wait = self._wait(now, 1)
            if wait == 0.0:
                self._tokens = max(self._tokens - 1.0, 0.0)
                self._hour_count += 1
            return wait

    def wait_for(self, slots: int = 1) -> float:
        """Seconds until `slots` slots are free at once (0.0: now), taking none: the
        worker begins a message only when a slot awaits it and every message already
        begun."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            self._refill(now)
            return self._wait(now, slots)

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a slot; False if `stop` was set (or `interrupt()` called) while waiting."""
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return True
            if self._interrupted.is_set() or (stop is not None and stop.is_set()):
                return False
            if stop is not None:
                stop.wait(min(wait, 1.0))
            else:
                self._sleep(min(wait, 1.0))
