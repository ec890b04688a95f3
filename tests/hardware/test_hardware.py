"""Hardware detection and tuning (mongars/hardware) on fake /proc and /sys trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.cli import app
from mongars.hardware import Hardware, detect, recommend
from mongars.hardware.detect import GIB


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cpuinfo(cpus: int, cores: int | None = None) -> str:
    """x86-style blocks with core ids when ``cores`` is given, ARM-style without."""
    blocks = []
    for n in range(cpus):
        lines = [f"processor\t: {n}"]
        if cores is not None:
            lines += ["physical id\t: 0", f"core id\t\t: {n % cores}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _tree(
    root: Path,
    cpus: int,
    mem_kb: int,
    cores: int | None = None,
    files: dict[str, str] | None = None,
) -> Path:
    _write(root, "proc/cpuinfo", _cpuinfo(cpus, cores))
    _write(root, "proc/meminfo", f"MemTotal:       {mem_kb} kB\nMemFree:        1000 kB\n")
    for rel, text in (files or {}).items():
        _write(root, rel, text)
    return root


def pi4(root: Path) -> Path:  # a 4 GB board reports 3.7 GiB
    model = "Raspberry Pi 4 Model B Rev 1.4\x00"
    return _tree(root, 4, 3_884_328, files={"proc/device-tree/model": model})


def jetson_orin(root: Path) -> Path:
    release = "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref\n"
    return _tree(root, 8, 16 * 1024**2, files={"etc/nv_tegra_release": release})


def vm_2core(root: Path) -> Path:
    cgroup = {"sys/fs/cgroup/cpu.max": "200000 100000\n", "sys/fs/cgroup/memory.max": "max\n"}
    return _tree(root, 2, 8 * 1024**2, cores=2, files=cgroup)


def server_64(root: Path) -> Path:  # 64 cores, 128 hyperthreads
    cgroup = {"sys/fs/cgroup/cpu.max": "max 100000\n", "sys/fs/cgroup/memory.max": "max\n"}
    return _tree(root, 128, 256 * 1024**2, cores=64, files=cgroup)


def container(root: Path) -> Path:  # a 16-CPU, 64 GiB host; the container: 1.5 CPUs, 2 GiB
    cgroup = {
        "sys/fs/cgroup/cpu.max": "150000 100000\n",
        "sys/fs/cgroup/memory.max": f"{2 * GIB}\n",
    }
    return _tree(root, 16, 64 * 1024**2, cores=8, files=cgroup)


def test_raspberry_pi_4(tmp_path: Path) -> None:
    hw = detect(pi4(tmp_path))
    assert hw.raspberry_pi and hw.board == "Raspberry Pi 4 Model B Rev 1.4"
    assert (hw.cpus, hw.physical_cores, hw.cgroup_version) == (4, None, None)
    assert 3.6 * GIB < hw.effective_ram_bytes < 3.8 * GIB
    rec = recommend(hw)
    assert (rec.workers, rec.llm_threads, rec.embed_batch_size) == (1, 4, 8)
    assert not rec.training_allowed and "Raspberry Pi" in rec.training_reason


def test_jetson_orin(tmp_path: Path) -> None:
    hw = detect(jetson_orin(tmp_path))
    assert hw.jetson and hw.cuda and not hw.raspberry_pi
    assert (hw.cpus, hw.ram_bytes) == (8, 16 * GIB)
    rec = recommend(hw)
    assert (rec.workers, rec.llm_threads, rec.embed_batch_size) == (4, 2, 32)
    assert rec.training_allowed and "GPU" in rec.training_reason
    assert any("Jetson" in note for note in rec.notes)


def test_two_core_vm(tmp_path: Path) -> None:
    hw = detect(vm_2core(tmp_path))
    assert (hw.cpus, hw.physical_cores, hw.cgroup_cpus, hw.cgroup_memory_bytes) == (2, 2, 2.0, None)
    assert (hw.effective_cpus, hw.effective_ram_bytes, hw.cgroup_version) == (2.0, 8 * GIB, 2)
    rec = recommend(hw)
    assert (rec.workers, rec.llm_threads, rec.embed_batch_size) == (1, 2, 32)
    assert rec.training_allowed and "CPU" in rec.training_reason


def test_64_core_server(tmp_path: Path) -> None:
    hw = detect(server_64(tmp_path))
    assert (hw.cpus, hw.physical_cores, hw.cgroup_cpus) == (128, 64, None)
    assert hw.effective_ram_bytes == 256 * GIB
    rec = recommend(hw)
    # 4 workers (the cap), the 64 physical cores shared among them.
    assert (rec.workers, rec.llm_threads, rec.embed_batch_size) == (4, 16, 64)
    assert rec.training_allowed and rec.notes == ()


def test_container_limited_by_cgroup(tmp_path: Path) -> None:
    hw = detect(container(tmp_path))
    assert (hw.cpus, hw.cgroup_cpus, hw.cgroup_memory_bytes) == (16, 1.5, 2 * GIB)
    assert (hw.effective_cpus, hw.effective_ram_bytes) == (1.5, 2 * GIB)
    rec = recommend(hw)
    assert (rec.workers, rec.llm_threads, rec.embed_batch_size) == (1, 1, 8)
    assert not rec.training_allowed and "6 GiB" in rec.training_reason
    assert any("1.5 of 16" in note for note in rec.notes)


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    files = {
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{12 * GIB}\n",
    }
    hw = detect(_tree(tmp_path, 8, 32 * 1024**2, files=files))
    assert (hw.cgroup_version, hw.cgroup_cpus, hw.effective_ram_bytes) == (1, 3.0, 12 * GIB)
    unlimited = {
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
    }
    hw = detect(_tree(tmp_path / "v1", 8, 32 * 1024**2, files=unlimited))
    assert (hw.cgroup_version, hw.cgroup_cpus, hw.cgroup_memory_bytes) == (1, None, None)


def test_own_cgroup_v2_directory_is_read(tmp_path: Path) -> None:
    files = {
        "proc/self/cgroup": "0::/system.slice/mongars.service\n",
        "sys/fs/cgroup/cpu.max": "max 100000\n",
        "sys/fs/cgroup/system.slice/mongars.service/cpu.max": "100000 100000\n",
        "sys/fs/cgroup/system.slice/mongars.service/memory.max": f"{GIB}\n",
    }
    hw = detect(_tree(tmp_path, 4, 8 * 1024**2, files=files))
    assert (hw.cgroup_cpus, hw.cgroup_memory_bytes) == (1.0, GIB)


def test_nvidia_driver_and_the_real_machine(tmp_path: Path) -> None:
    files = {"proc/driver/nvidia/version": "NVRM version: NVIDIA UNIX x86_64 Kernel Module\n"}
    hw = detect(_tree(tmp_path, 32, 128 * 1024**2, cores=16, files=files))
    assert hw.cuda and not hw.jetson
    real = detect()  # whatever runs the tests: figures that make sense
    assert isinstance(real, Hardware) and real.cpus >= 1 and real.ram_bytes > 0
    assert recommend(real).llm_threads >= 1


def test_auto_llm_threads_follow_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    from mongars.llm.llamacpp import LlamaCppProvider

    monkeypatch.setattr("mongars.hardware.default_llm_threads", lambda: 3)
    auto = LlamaCppProvider(model_path="", data_dir=Path("."), context_window=512)
    explicit = LlamaCppProvider(model_path="", data_dir=Path("."), context_window=512, threads=5)
    assert (auto._threads, explicit._threads) == (3, 5)


def test_doctor_json_and_table(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--json", "--root", str(container(tmp_path))])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["hardware"]["effective_cpus"] == 1.5
    assert data["hardware"]["cgroup_memory_bytes"] == 2 * GIB
    assert data["recommendations"]["workers"] == 1
    assert data["recommendations"]["embed_batch_size"] == 8
    assert data["recommendations"]["training_allowed"] is False
    table = runner.invoke(app, ["doctor", "--root", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "Recommendations" in table.output and "llama.cpp threads" in table.output
