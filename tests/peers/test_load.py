"""The load factor a node reports to peers: generations now, or their recent average."""

from __future__ import annotations

import math

import pytest

from mongars.runtime import LoadMeter
from tests.fakes import ManualClock as Clock


def test_the_average_follows_generations_with_its_time_constant() -> None:
    clock = Clock()
    meter = LoadMeter(tau_s=2.0, clock=clock)
    assert meter.average() == 0.0
    meter.set(1)
    clock.now += 2.0
    assert meter.average() == pytest.approx(1 - math.exp(-1))
    clock.now += 100.0
    assert meter.average() == pytest.approx(1.0)
    meter.set(0)
    clock.now += 2.0
    assert meter.average() == pytest.approx(math.exp(-1))


def test_a_node_busy_with_short_gaps_does_not_look_idle_in_a_gap() -> None:
    clock = Clock()
    meter = LoadMeter(tau_s=2.0, clock=clock)
    for _ in range(10):  # 1 s answers, 0.4 s between them
        meter.set(1)
        clock.now += 1.0
        meter.set(0)
        clock.now += 0.4
    assert meter.average() > 0.5  # a snapshot would say 0
    clock.now += 10.0  # idle for a while: forgotten
    assert meter.average() < 0.01


def test_a_clock_that_goes_back_does_not_swing_the_average() -> None:
    clock = Clock()
    meter = LoadMeter(tau_s=2.0, clock=clock)
    meter.set(1)
    clock.now -= 5.0  # a negative interval would give 1 - e^2.5, far below 0
    assert meter.average() == 0.0
