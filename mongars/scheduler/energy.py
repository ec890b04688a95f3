"""Energy per job run: RAPL counters where readable, else CPU seconds x watts per core.

RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``) counts microjoules for a whole
package, so a reading covers everything the machine did meanwhile; where the files are
absent or unreadable (most VMs, this one), the estimate is this process's and its
children's CPU seconds times ``watts_per_core``, labelled ``estimate``."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Reading:
    cpu_s: float
    rapl_uj: dict[str, int] | None  # zone -> counter


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    energy_wh: float
    method: str  # rapl | estimate


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have exited."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class EnergyMeter:
    def __init__(self, watts_per_core: float, rapl_root: Path = Path("/sys/class/powercap")):
        self.watts_per_core = watts_per_core
        self.rapl_root = rapl_root

    def _zones(self) -> list[Path]:
        """Top-level package zones (``intel-rapl:0``), not their subzones (``:0:0``),
        which the package already counts."""
        try:
            found = sorted(self.rapl_root.glob("intel-rapl:*"))
        except OSError:
            return []
        return [z for z in found if z.name.count(":") == 1]

    def _read_rapl(self) -> dict[str, int] | None:
        zones = self._zones()
        if not zones:
            return None
        values: dict[str, int] = {}
        for zone in zones:
            try:
                values[zone.name] = int((zone / "energy_uj").read_text().strip())
            except (OSError, ValueError):
                return None  # unreadable (root-only since 2020 on many kernels)
        return values

    def _range(self, zone: str) -> int:
        try:
            return int((self.rapl_root / zone / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            return 0

    def start(self) -> Reading:
        return Reading(cpu_seconds(), self._read_rapl())

    def stop(self, start: Reading) -> Usage:
        cpu = max(0.0, cpu_seconds() - start.cpu_s)
        end = self._read_rapl() if start.rapl_uj is not None else None
        if start.rapl_uj is not None and end is not None and end.keys() == start.rapl_uj.keys():
            joules = 0.0
            for zone, before in start.rapl_uj.items():
                delta = end[zone] - before
                if delta < 0:  # the counter wrapped at max_energy_range_uj
                    delta += self._range(zone)
                joules += max(delta, 0) / 1e6
            return Usage(cpu, joules / 3600.0, "rapl")
        return Usage(cpu, cpu * self.watts_per_core / 3600.0, "estimate")
