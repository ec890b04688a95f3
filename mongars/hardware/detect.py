"""Hardware detection from files under an injectable root: ``/proc/cpuinfo``,
``/proc/meminfo``, cgroup v2 (``cpu.max``, ``memory.max``) or v1 (CFS quota,
``memory.limit_in_bytes``), ``/proc/device-tree/model`` (Raspberry Pi),
``/etc/nv_tegra_release`` (Jetson) and ``/proc/driver/nvidia/version`` (an NVIDIA
driver). No heavy import: CUDA is inferred from the driver file, not from torch."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


@dataclass(frozen=True)
class Hardware:
    """What was found; ``None`` where a figure could not be read or has no limit."""

    cpus: int  # logical CPUs this process may run on
    physical_cores: int | None  # from /proc/cpuinfo "core id"s, when it lists them
    ram_bytes: int  # MemTotal
    cgroup_cpus: float | None  # CPU quota in CPUs (1.5 = 150 ms per 100 ms)
    cgroup_memory_bytes: int | None
    cgroup_version: int | None  # 2, 1, or None where no limit file was found
    board: str | None  # /proc/device-tree/model, e.g. "Raspberry Pi 4 Model B Rev 1.4"
    raspberry_pi: bool
    jetson: bool
    nvidia_driver: bool

    @property
    def effective_cpus(self) -> float:
        """min(CPUs, cgroup quota)."""
        if self.cgroup_cpus is None:
            return float(self.cpus)
        return min(float(self.cpus), self.cgroup_cpus)

    @property
    def effective_ram_bytes(self) -> int:
        """min(RAM, cgroup memory limit)."""
        if self.cgroup_memory_bytes is None:
            return self.ram_bytes
        return min(self.ram_bytes, self.cgroup_memory_bytes)

    @property
    def cuda(self) -> bool:
        return self.jetson or self.nvidia_driver

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["effective_cpus"] = self.effective_cpus
        data["effective_ram_bytes"] = self.effective_ram_bytes
        data["cuda"] = self.cuda
        return data


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _cpus(root: Path, cpuinfo: str | None) -> int:
    if root == Path("/") and hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    if cpuinfo:
        count = sum(1 for line in cpuinfo.splitlines() if line.split(":")[0].strip() == "processor")
        if count:
            return count
    return max(1, os.cpu_count() or 1)


def _physical_cores(cpuinfo: str | None) -> int | None:
    """Distinct (physical id, core id) pairs; None where cpuinfo has no core ids (ARM)."""
    if not cpuinfo:
        return None
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo.split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in block.splitlines())
        )
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def _mem_total(meminfo: str | None) -> int:
    for line in (meminfo or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024  # kB
    return 0


def _sysconf_ram(root: Path) -> int:
    """Without /proc/meminfo (macOS): the OS's figure, for the real root only."""
    if root != Path("/"):
        return 0
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _cgroup_v2_dir(root: Path) -> Path:
    """The process's own cgroup v2 directory when /proc/self/cgroup names one that
    exists (on a host, a slice), else the mount point (in a container, its cgroup)."""
    base = root / "sys/fs/cgroup"
    for line in (_read(root / "proc/self/cgroup") or "").splitlines():
        if line.startswith("0::"):
            own = base / line[3:].strip().lstrip("/")
            if own != base and (own / "cpu.max").is_file():
                return own
    return base


def _int_limit(text: str | None) -> int | None:
    value = (text or "").strip()
    if not value or value == "max":
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    # cgroup v1 writes "no limit" as a huge page-aligned number.
    return number if 0 < number < 2**62 else None


def _cgroup(root: Path) -> tuple[int | None, float | None, int | None]:
    """(version, CPU quota in CPUs, memory limit in bytes)."""
    v2 = _cgroup_v2_dir(root)
    cpu_max = _read(v2 / "cpu.max")
    memory_max = _read(v2 / "memory.max")
    if cpu_max is not None or memory_max is not None:
        cpus = None
        parts = (cpu_max or "").split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                cpus = int(parts[0]) / int(parts[1])
            except (ValueError, ZeroDivisionError):
                cpus = None
        return 2, cpus, _int_limit(memory_max)
    base = root / "sys/fs/cgroup"
    cpus = None
    found = False
    for name in _V1_CPU_DIRS:
        quota = _read(base / name / "cpu.cfs_quota_us")
        period = _read(base / name / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            found = True
            try:
                q, p = int(quota), int(period)
            except ValueError:
                break
            cpus = q / p if q > 0 and p > 0 else None
            break
    limit_text = _read(base / "memory/memory.limit_in_bytes")
    found = found or limit_text is not None
    return (1 if found else None), cpus, _int_limit(limit_text)


def detect(root: str | Path = "/") -> Hardware:
    """Read this machine's figures (or a fake tree's, under ``root``)."""
    base = Path(root)
    cpuinfo = _read(base / "proc/cpuinfo")
    version, cgroup_cpus, cgroup_memory = _cgroup(base)
    model = (_read(base / "proc/device-tree/model") or "").replace("\x00", "").strip() or None
    return Hardware(
        cpus=_cpus(base, cpuinfo),
        physical_cores=_physical_cores(cpuinfo),
        ram_bytes=_mem_total(_read(base / "proc/meminfo")) or _sysconf_ram(base),
        cgroup_cpus=cgroup_cpus,
        cgroup_memory_bytes=cgroup_memory,
        cgroup_version=version,
        board=model,
        raspberry_pi=bool(model and model.startswith("Raspberry Pi")),
        jetson=(base / "etc/nv_tegra_release").is_file(),
        nvidia_driver=(base / "proc/driver/nvidia/version").is_file(),
    )
