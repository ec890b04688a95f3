"""CPU pressure: PSI (``/proc/pressure/cpu``) where the kernel has it, else load average."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PSI_PATH = Path("/proc/pressure/cpu")


@dataclass(frozen=True)
class Pressure:
    value: float
    method: str  # psi (% of time some task waited for a CPU, last 10 s) | loadavg (per core)


def read_psi(path: Path = PSI_PATH) -> float | None:
    """The ``some avg10`` figure, or None where the file is absent or unreadable."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "some":
            for field in fields[1:]:
                key, _, value = field.partition("=")
                if key == "avg10":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def cpu_pressure(psi_path: Path = PSI_PATH) -> Pressure:
    psi = read_psi(psi_path)
    if psi is not None:
        return Pressure(psi, "psi")
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - every Linux has it
        return Pressure(0.0, "none")
    return Pressure(load / (os.cpu_count() or 1), "loadavg")
