"""Sending rate limits shared by every connection of a worker: per second and per hour.

Relays often cap senders ("at most 10 messages per second, 20,000 per hour"); going
over gets the account throttled or blocked. A token bucket smooths the per-second
rate; a fixed one-hour window counts the hourly quota.
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

    def _wait_needed(self) -> float:
        """Seconds to wait before the next message (0: take it now, counted)."""
        now = self._clock()
        if self.per_hour > 0:
            if now - self._hour_started >= 3600:
                self._hour_started, self._hour_count = now, 0
            if self._hour_count >= self.per_hour:
                return self._hour_started + 3600 - now
        if self.per_second > 0:
            burst = max(self.per_second, 1.0)
            self._tokens = min(burst, self._tokens + (now - self._refilled) * self.per_second)
            self._refilled = now
            if self._tokens < 1.0 - 1e-9:  # tolerance: float sums never quite reach 1.0
                return max((1.0 - self._tokens) / self.per_second, 1e-4)
            self._tokens = max(self._tokens - 1.0, 0.0)
        self._hour_count += 1
        return 0.0

    def try_acquire(self) -> float:
        """Take a slot if one is free now (0.0); otherwise the seconds until one may be."""
        if self.unlimited:
            return 0.0
        with self._lock:
            return self._wait_needed()

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
