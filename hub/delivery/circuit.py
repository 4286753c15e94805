"""Per-agency circuit breaker: stop hammering an agency that is down.

closed --(failure_threshold consecutive transient failures)--> open
open   --(reset_timeout elapsed)--> half-open: one trial call goes through
half-open --(trial succeeds)--> closed;  --(trial fails)--> open again

While open, `before_call` raises `CircuitOpen` (transient): the message takes its normal retry
path without a call, so an outage costs the agency nothing and the hub no worker time. Only
transient failures count: a business refusal says the agency is alive.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from hub.errors import CircuitOpen, HubError


class CircuitBreaker:
    def __init__(self, name: str, *, failure_threshold: int = 10, reset_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        with self._lock:
            state = self._state()
            if state == "open" or (state == "half_open" and self._trial_running):
                raise CircuitOpen(f"circuit for {self.name} is open after {self._failures}"
                                  " consecutive failures", agency=self.name)
            if state == "half_open":
                self._trial_running = True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self, error: HubError) -> None:
        if not error.transient or isinstance(error, CircuitOpen):
            with self._lock:
                if not error.transient:
                    self._trial_running = False  # the agency answered: it is alive
                    self._failures = 0
                    self._opened_at = None
            return
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._failures >= self.failure_threshold or self._opened_at is not None:
                self._opened_at = self._clock()
