"""The circuit breaker on its own, with a hand-driven clock."""

from __future__ import annotations

from mongars.llm.breaker import BreakerState, CircuitBreaker
from tests.fakes import ManualClock as Clock


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    clock = Clock()
    b = CircuitBreaker(3, 30.0, clock=clock)
    for _ in range(2):
        clock.now += 1
        b.failed(started=clock.now - 0.5)
    b.succeeded()
    for _ in range(2):
        clock.now += 1
        b.failed(started=clock.now - 0.5)
    assert b.state is BreakerState.CLOSED
    clock.now += 1
    b.failed(started=clock.now - 0.5)
    assert b.state is BreakerState.OPEN and not b.admits()


def test_requests_in_flight_that_fail_together_are_one_incident() -> None:
    """One replica behind the endpoint killed: every request it held fails at once."""
    clock = Clock()
    b = CircuitBreaker(2, 30.0, clock=clock)
    started = clock.now
    clock.now += 5
    for _ in range(8):  # all started before the first of them failed
        b.failed(started=started)
        clock.now += 0.01
    assert b.state is BreakerState.CLOSED and b.failures == 1
    # A request started after that incident and failing too is a second one: open.
    fresh = clock.now
    clock.now += 0.2
    b.failed(started=fresh)
    assert b.state is BreakerState.OPEN


def test_without_a_start_time_every_failure_counts() -> None:
    b = CircuitBreaker(2, 30.0, clock=Clock())
    b.failed()
    b.failed()
    assert b.state is BreakerState.OPEN


def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 10.0, clock=clock)
    b.failed(started=clock.now)
    clock.now += 11
    assert b.acquire() and b.state is BreakerState.HALF_OPEN
    b.failed(started=clock.now - 20)  # even one that looks like the old incident
    assert b.state is BreakerState.OPEN
