"""A circuit breaker per endpoint: stop sending requests to one that keeps failing,
and let a single probe request through after a cool-down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    """Closed; open after ``threshold`` consecutive failures; half-open (one probe
    request) once ``cooldown_s`` has passed; closed when the probe succeeds, open again
    when it fails.

    Requests in flight together that fail together are one incident, not several: a
    failure of a request that started before the last recorded failure is not counted.
    Behind one endpoint there may be many replicas (a Ray Serve proxy): one replica
    killed fails every request it held at once, which must not open the breaker on the
    proxy that still serves the others. An endpoint that is really down keeps failing
    new requests, and those count."""

    threshold: int
    cooldown_s: float
    on_change: Callable[[BreakerState], None] = lambda state: None
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    failed_at: float = float("-inf")  # when the last failure was recorded

    def probe_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when closed)."""
        if self.state is BreakerState.CLOSED:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_s - self.clock())

    def admits(self) -> bool:
        if self.state is BreakerState.OPEN:
            return self.probe_in() == 0.0
        return self.state is BreakerState.CLOSED

    def acquire(self) -> bool:
        """Let one request through, when allowed (an open one turns half-open)."""
        if not self.admits():
            return False
        if self.state is BreakerState.OPEN:
            self._set(BreakerState.HALF_OPEN)
        return True

    def succeeded(self) -> None:
        self.failures = 0
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failed(self, started: float | None = None) -> None:
        """A failure of a request that started at ``started`` (clock time)."""
        same_incident = started is not None and started < self.failed_at
        self.failed_at = self.clock()
        if same_incident and self.state is BreakerState.CLOSED:
            return
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.opened_at = self.clock()
            if self.state is not BreakerState.OPEN:
                self._set(BreakerState.OPEN)

    def abandoned(self) -> None:
        """The request was cancelled before its endpoint answered: free the probe."""
        if self.state is BreakerState.HALF_OPEN:
            self._set(BreakerState.OPEN)  # opened_at unchanged: the next request probes

    def _set(self, state: BreakerState) -> None:
        self.state = state
        self.on_change(state)
