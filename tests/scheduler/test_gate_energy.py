"""The idle gate's inputs: CPU pressure (PSI or load average), energy per run (RAPL or
an estimate from CPU seconds) and user activity shared across processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory
from mongars.scheduler import energy
from mongars.scheduler.energy import EnergyMeter
from mongars.scheduler.idle import Activity, IdleGate, counts_as_activity
from mongars.scheduler.pressure import cpu_pressure, read_psi
from mongars.settings import SchedulerSettings

NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _psi(tmp_path: Path, some_avg10: float, name: str = "cpu") -> Path:
    path = tmp_path / name
    path.write_text(
        f"some avg10={some_avg10:.2f} avg60=0.50 avg300=0.10 total=12345\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    return path


# -- pressure -------------------------------------------------------------------------


def test_read_psi_takes_the_some_avg10_figure(tmp_path: Path) -> None:
    path = tmp_path / "cpu"
    path.write_text(
        "some avg10=1.23 avg60=0.50 avg300=0.10 total=12345\n"
        "full avg10=9.99 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert read_psi(path) == 1.23


def test_read_psi_is_none_for_a_missing_garbled_or_full_only_file(tmp_path: Path) -> None:
    assert read_psi(tmp_path / "absent") is None
    garbage = tmp_path / "garbage"
    garbage.write_text("not a pressure file\n\x00\x01 some\n")
    assert read_psi(garbage) is None
    bad_number = tmp_path / "bad_number"
    bad_number.write_text("some avg10=lots avg60=0.50 avg300=0.10 total=1\n")
    assert read_psi(bad_number) is None
    full_only = tmp_path / "full_only"
    full_only.write_text("full avg10=4.00 avg60=0.00 avg300=0.00 total=0\n")
    assert read_psi(full_only) is None
    assert read_psi(tmp_path) is None  # a directory: unreadable


def test_cpu_pressure_uses_psi_when_the_file_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    pressure = cpu_pressure(_psi(tmp_path, 7.5))
    assert (pressure.method, pressure.value) == ("psi", 7.5)


def test_cpu_pressure_falls_back_to_load_per_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 1.0, 1.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    pressure = cpu_pressure(tmp_path / "absent")
    assert pressure.method == "loadavg"
    assert pressure.value == pytest.approx(1.5)


# -- energy ---------------------------------------------------------------------------

MAX_RANGE = 262_143_328_850


def _write_counter(root: Path, zone: str, uj: int, max_range: int = MAX_RANGE) -> None:
    (root / zone).mkdir(parents=True, exist_ok=True)
    (root / zone / "energy_uj").write_text(f"{uj}\n")
    (root / zone / "max_energy_range_uj").write_text(f"{max_range}\n")


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """CPU seconds read 10.0 at start and 13.6 at stop."""
    readings = iter([10.0, 13.6])
    monkeypatch.setattr(energy, "cpu_seconds", lambda: next(readings))
    yield


def test_rapl_sums_package_deltas_and_ignores_subzones(tmp_path: Path, cpu: None) -> None:
    root = tmp_path / "powercap"
    _write_counter(root, "intel-rapl:0", 1_000_000)
    _write_counter(root, "intel-rapl:0:0", 500_000)  # core subzone, counted by package 0
    _write_counter(root, "intel-rapl:1", 2_000_000)
    meter = EnergyMeter(watts_per_core=15.0, rapl_root=root)

    start = meter.start()
    _write_counter(root, "intel-rapl:0", 1_000_000 + 3_600_000_000)  # 3600 J
    _write_counter(root, "intel-rapl:0:0", 500_000 + 7_200_000_000)  # would add 2 Wh
    _write_counter(root, "intel-rapl:1", 2_000_000 + 1_800_000_000)  # 1800 J
    usage = meter.stop(start)

    assert usage.method == "rapl"
    assert usage.energy_wh == pytest.approx((3_600_000_000 + 1_800_000_000) / 1e6 / 3600)
    assert usage.energy_wh == pytest.approx(1.5)
    assert usage.cpu_s == pytest.approx(3.6)


def test_rapl_counter_that_wrapped_adds_its_range(tmp_path: Path, cpu: None) -> None:
    root = tmp_path / "powercap"
    _write_counter(root, "intel-rapl:0", MAX_RANGE - 1_000_000)
    _write_counter(root, "intel-rapl:1", 5_000_000)
    meter = EnergyMeter(watts_per_core=15.0, rapl_root=root)

    start = meter.start()
    _write_counter(root, "intel-rapl:0", 2_600_000)  # wrapped: 1 J before + 2.6 J after
    _write_counter(root, "intel-rapl:1", 5_400_000)  # 0.4 J
    usage = meter.stop(start)

    assert usage.method == "rapl"
    assert usage.energy_wh == pytest.approx((3_600_000 + 400_000) / 1e6 / 3600)


def _assert_estimate(meter: EnergyMeter) -> None:
    usage = meter.stop(meter.start())
    assert usage.method == "estimate"
    assert usage.cpu_s == pytest.approx(3.6)
    assert usage.energy_wh == pytest.approx(3.6 * 15 / 3600)


def test_no_rapl_tree_gives_an_estimate(tmp_path: Path, cpu: None) -> None:
    root = tmp_path / "powercap"
    root.mkdir()
    _assert_estimate(EnergyMeter(watts_per_core=15.0, rapl_root=root))


def test_missing_rapl_root_gives_an_estimate(tmp_path: Path, cpu: None) -> None:
    _assert_estimate(EnergyMeter(watts_per_core=15.0, rapl_root=tmp_path / "nowhere"))


def test_unreadable_rapl_counter_gives_an_estimate(tmp_path: Path, cpu: None) -> None:
    root = tmp_path / "powercap"
    _write_counter(root, "intel-rapl:0", 1_000_000)
    (root / "intel-rapl:1" / "energy_uj").mkdir(parents=True)  # unreadable, even by root
    _assert_estimate(EnergyMeter(watts_per_core=15.0, rapl_root=root))


def test_rapl_unreadable_at_stop_gives_an_estimate(tmp_path: Path, cpu: None) -> None:
    root = tmp_path / "powercap"
    _write_counter(root, "intel-rapl:0", 1_000_000)
    meter = EnergyMeter(watts_per_core=15.0, rapl_root=root)
    start = meter.start()
    assert start.rapl_uj == {"intel-rapl:0": 1_000_000}
    (root / "intel-rapl:0" / "energy_uj").unlink()
    usage = meter.stop(start)
    assert usage.method == "estimate"
    assert usage.energy_wh == pytest.approx(3.6 * 15 / 3600)


# -- activity and the idle gate -------------------------------------------------------


def _with_sessions(
    tmp_path: Path, scenario: Callable[[Callable[[], Any]], Awaitable[None]]
) -> None:
    """Run ``scenario(new_sessions)`` against a migrated SQLite database; each call of
    ``new_sessions()`` opens its own engine, as a separate process would."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}"
    migrate.upgrade(url)  # outside any event loop (Alembic runs its own)

    async def main() -> None:
        engines = []

        def new_sessions() -> Any:
            engine = create_engine(url)
            engines.append(engine)
            return create_session_factory(engine)

        try:
            await scenario(new_sessions)
        finally:
            for engine in engines:
                await engine.dispose()

    asyncio.run(main())


def _settings(**overrides: Any) -> SchedulerSettings:
    base: dict[str, Any] = {
        "idle_after_s": 600.0,
        "max_cpu_pressure": 20.0,
        "max_load_per_core": 0.7,
        "activity_write_s": 5.0,
    }
    return SchedulerSettings(**(base | overrides))


def test_idle_without_any_activity_and_low_pressure(tmp_path: Path) -> None:
    async def scenario(new_sessions: Callable[[], Any]) -> None:
        activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
        gate = IdleGate(_settings(), activity, lambda: 0, psi_path=_psi(tmp_path, 1.0))
        state = await gate.check()
        assert (state.idle, state.reason) == (True, "idle")

    with time_machine.travel(NOON, tick=False):
        _with_sessions(tmp_path, scenario)


def test_user_activity_blocks_until_idle_after_s_passed(tmp_path: Path) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:

        async def scenario(new_sessions: Callable[[], Any]) -> None:
            activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            gate = IdleGate(_settings(), activity, lambda: 0, psi_path=_psi(tmp_path, 1.0))
            activity.note()
            state = await gate.check()
            assert not state.idle
            assert "user activity" in state.reason

            traveller.shift(timedelta(seconds=599))
            state = await gate.check()
            assert not state.idle
            assert "user activity" in state.reason

            traveller.shift(timedelta(seconds=2))  # 601 s after the activity
            state = await gate.check()
            assert (state.idle, state.reason) == (True, "idle")

        _with_sessions(tmp_path, scenario)


def test_activity_in_another_process_blocks_the_gate(tmp_path: Path) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:

        async def scenario(new_sessions: Callable[[], Any]) -> None:
            web = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            scheduler = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            gate = IdleGate(_settings(), scheduler, lambda: 0, psi_path=_psi(tmp_path, 1.0))
            web.note()
            await web.share()
            traveller.shift(timedelta(seconds=60))
            state = await gate.check()
            assert not state.idle
            assert "user activity 60 s ago" in state.reason

        _with_sessions(tmp_path, scenario)


def test_an_answer_being_generated_blocks_the_gate(tmp_path: Path) -> None:
    async def scenario(new_sessions: Callable[[], Any]) -> None:
        activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
        gate = IdleGate(_settings(), activity, lambda: 1, psi_path=_psi(tmp_path, 1.0))
        state = await gate.check()
        assert not state.idle
        assert "answer" in state.reason
        assert gate.user_came_back(since=time.time())

    with time_machine.travel(NOON, tick=False):
        _with_sessions(tmp_path, scenario)


def test_high_cpu_pressure_blocks_the_gate(tmp_path: Path) -> None:
    async def scenario(new_sessions: Callable[[], Any]) -> None:
        activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
        gate = IdleGate(
            _settings(max_cpu_pressure=20.0),
            activity,
            lambda: 0,
            psi_path=_psi(tmp_path, 35.5),
        )
        state = await gate.check()
        assert not state.idle
        assert "CPU pressure" in state.reason
        assert "35.50" in state.reason

    with time_machine.travel(NOON, tick=False):
        _with_sessions(tmp_path, scenario)


def test_high_load_per_core_blocks_the_gate_without_psi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    async def scenario(new_sessions: Callable[[], Any]) -> None:
        activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
        gate = IdleGate(_settings(), activity, lambda: 0, psi_path=tmp_path / "no-psi")
        monkeypatch.setattr(os, "getloadavg", lambda: (1.8, 0.0, 0.0))  # 0.9 per core
        state = await gate.check()
        assert not state.idle
        assert "CPU pressure" in state.reason
        assert "loadavg" in state.reason
        monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 0.0, 0.0))  # 0.5 per core
        assert (await gate.check()).idle

    with time_machine.travel(NOON, tick=False):
        _with_sessions(tmp_path, scenario)


def test_gate_off_is_idle_regardless(tmp_path: Path) -> None:
    async def scenario(new_sessions: Callable[[], Any]) -> None:
        activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
        activity.note()
        gate = IdleGate(
            _settings(idle_gate=False), activity, lambda: 3, psi_path=_psi(tmp_path, 99.0)
        )
        state = await gate.check()
        assert state.idle
        assert not gate.user_came_back(since=0.0)

    with time_machine.travel(NOON, tick=False):
        _with_sessions(tmp_path, scenario)


def test_user_came_back_sees_activity_after_since(tmp_path: Path) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:

        async def scenario(new_sessions: Callable[[], Any]) -> None:
            activity = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            gate = IdleGate(_settings(), activity, lambda: 0, psi_path=_psi(tmp_path, 1.0))
            started = time.time()
            assert not gate.user_came_back(since=started)
            traveller.shift(timedelta(seconds=1))
            activity.note()
            assert gate.user_came_back(since=started)

        _with_sessions(tmp_path, scenario)


def test_activity_is_shared_across_processes_at_most_every_write_every_s(
    tmp_path: Path,
) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:

        async def scenario(new_sessions: Callable[[], Any]) -> None:
            first = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            second = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            assert await second.latest() == 0.0

            first.note()
            await first.share()
            noon = NOON.timestamp()
            assert await second.latest() == pytest.approx(noon, abs=1.0)

            traveller.shift(timedelta(seconds=3))  # within write_every_s: not written
            first.note()
            await first.share()
            assert await second.latest() == pytest.approx(noon, abs=0.001)
            assert await first.latest() == pytest.approx(noon + 3, abs=0.001)  # its own

            traveller.shift(timedelta(seconds=3))  # 6 s after the last write: written
            first.note()
            await first.share()
            assert await second.latest() == pytest.approx(noon + 6, abs=0.001)

        _with_sessions(tmp_path, scenario)


def test_an_older_mark_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:

        async def scenario(new_sessions: Callable[[], Any]) -> None:
            early = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            late = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            reader = Activity(new_sessions(), write_every_s=5.0, clock=time.time)
            early.note()
            traveller.shift(timedelta(seconds=30))
            late.note()
            await late.share()
            await early.share()  # a slow process writes its older mark afterwards
            assert await reader.latest() == pytest.approx(NOON.timestamp() + 30, abs=0.001)

        _with_sessions(tmp_path, scenario)


@pytest.mark.parametrize(
    ("path", "counts"),
    [
        ("/api/v1/chat", True),
        ("/", True),
        ("/ws", True),
        ("/healthz", False),
        ("/readyz", False),
        ("/metrics", False),
        ("/static/x.css", False),
        ("/api/v1/jobs", False),
        ("/api/v1/jobs/abc/runs", False),
        ("/admin/jobs/x", False),
    ],
)
def test_counts_as_activity(path: str, counts: bool) -> None:
    assert counts_as_activity(path) is counts
