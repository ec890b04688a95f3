"""From detected hardware to tuning: uvicorn workers, llama.cpp threads, embedding
batch size and whether local training is allowed, each with its reason.

Rules (docs/doctor.md): effective CPUs = min(CPUs, cgroup quota), effective RAM =
min(RAM, cgroup limit). Every worker loads the embedded model and the embedding
model (~1 GiB), so workers are capped by RAM as well as by cores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mongars.hardware.detect import GIB, Hardware

MAX_WORKERS = 4
WORKER_RAM = 1 * GIB  # embedded llama.cpp model + embedding model, per worker
TRAINING_RAM = 6 * GIB
# Embedding batch by effective RAM: below 4 GiB 8, below 8 GiB 16, below 32 GiB 32, else 64.
_BATCHES = ((4 * GIB, 8), (8 * GIB, 16), (32 * GIB, 32))


@dataclass(frozen=True)
class Recommendations:
    workers: int
    workers_reason: str
    llm_threads: int  # per worker
    llm_threads_reason: str
    embed_batch_size: int
    embed_batch_reason: str
    training_allowed: bool
    training_reason: str
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def compute_cores(hw: Hardware) -> int:
    """Whole CPUs worth computing on: the effective CPUs, no more than the physical
    cores where /proc/cpuinfo lists them (hyperthreads slow llama.cpp down)."""
    cores = hw.effective_cpus
    if hw.physical_cores:
        cores = min(cores, float(hw.physical_cores))
    return max(1, math.floor(cores))


def _workers(hw: Hardware) -> tuple[int, str]:
    cpus, ram = hw.effective_cpus, hw.effective_ram_bytes
    if hw.raspberry_pi:
        return 1, "Raspberry Pi: one copy of the models in memory"
    if cpus <= 2 or ram < 4 * GIB:
        return 1, f"{cpus:g} CPUs, {_gib(ram)}: one worker (<= 2 CPUs or < 4 GiB)"
    by_cores = int(cpus) // 2
    by_ram = max(1, int(ram // WORKER_RAM) - 1)  # 1 GiB left to the system
    workers = max(1, min(MAX_WORKERS, by_cores, by_ram))
    limit = "cap" if workers == MAX_WORKERS else ("CPUs / 2" if workers == by_cores else "RAM")
    return workers, f"min({MAX_WORKERS}, CPUs // 2 = {by_cores}, ~1 GiB each = {by_ram}): {limit}"


def llm_threads_for(hw: Hardware, workers: int) -> int:
    """llama.cpp threads per worker: compute cores shared by the workers, at least 1."""
    return max(1, compute_cores(hw) // max(1, workers))


def _batch(hw: Hardware) -> tuple[int, str]:
    ram = hw.effective_ram_bytes
    for limit, size in _BATCHES:
        if ram < limit:
            return size, f"{_gib(ram)} < {_gib(limit)}"
    return 64, f"{_gib(ram)} >= 32 GiB"


def _training(hw: Hardware) -> tuple[bool, str]:
    ram = hw.effective_ram_bytes
    if hw.raspberry_pi:
        return False, "Raspberry Pi: too slow and too little memory for LoRA training"
    if ram < TRAINING_RAM:
        return False, f"{_gib(ram)} available, training needs >= 6 GiB"
    where = "on the GPU" if hw.cuda else "on the CPU (slow: hours for a few hundred steps)"
    return True, f"{_gib(ram)} available (>= 6 GiB); {where}"


def _notes(hw: Hardware) -> tuple[str, ...]:
    notes = []
    if hw.cgroup_cpus is not None and hw.cgroup_cpus < hw.cpus:
        notes.append(f"cgroup CPU quota {hw.cgroup_cpus:g} of {hw.cpus} CPUs")
    if hw.cgroup_memory_bytes is not None and hw.cgroup_memory_bytes < hw.ram_bytes:
        notes.append(f"cgroup memory limit {_gib(hw.cgroup_memory_bytes)} of {_gib(hw.ram_bytes)}")
    if hw.jetson:
        notes.append(
            "Jetson: CPU and GPU share the memory; a CUDA build of llama-cpp-python "
            "(GGML_CUDA=on) offloads the model"
        )
    elif hw.nvidia_driver:
        notes.append("NVIDIA driver found: CUDA builds of llama-cpp-python and torch can use it")
    if hw.raspberry_pi:
        notes.append("Raspberry Pi: keep the packaged 135M model and swap on an SSD")
    return tuple(notes)


def recommend(hw: Hardware) -> Recommendations:
    workers, workers_reason = _workers(hw)
    threads = llm_threads_for(hw, workers)
    batch, batch_reason = _batch(hw)
    allowed, training_reason = _training(hw)
    return Recommendations(
        workers=workers,
        workers_reason=workers_reason,
        llm_threads=threads,
        llm_threads_reason=f"{compute_cores(hw)} compute cores / {workers} worker(s)",
        embed_batch_size=batch,
        embed_batch_reason=batch_reason,
        training_allowed=allowed,
        training_reason=training_reason,
        notes=_notes(hw),
    )


def default_llm_threads(workers: int = 1) -> int:
    """llama.cpp threads when MONGARS_LLM__THREADS is 0 (auto): this machine's compute
    cores (cgroup-aware) for ``workers`` processes. `mongars serve` runs one."""
    from mongars.hardware.detect import detect

    return llm_threads_for(detect(), workers)
