"""Resumable training checkpoints, written atomically and verified on load.

A checkpoint is a folder ``<run_dir>/checkpoints/step-NNNNNN`` holding:

- ``adapter.safetensors``: the LoRA weights (peft's names);
- ``optimizer.safetensors``: the optimizer's tensors; its other state in ``state.json``;
- ``state.json``: step, LR scheduler, RNG states (python, numpy, torch: the
  torch one as a tensor in ``optimizer.safetensors``), data cursor, counters;
- ``manifest.json``: the sha256 and size of every file above, written last.

It is written into a hidden temporary folder next to the others, each file
fsynced, then renamed into place, so a reader sees a whole checkpoint or none;
the newest ``keep`` are kept. No pickle: tensors in safetensors, the rest JSON.
A folder without a manifest, or whose files do not match it, raises
:class:`CheckpointError`. Checking a checkpoint (:func:`latest_checkpoint`)
needs no torch, so the server can do it before it starts a worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
ADAPTER = "adapter.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE = "state.json"
_NAME = re.compile(r"^step-(\d{6,})$")
_TORCH_RNG = "__rng.torch"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, partial, corrupt or does not fit this run."""


@dataclass
class Checkpoint:
    """What a checkpoint holds, in memory."""

    step: int
    adapter: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]
    cursor: dict[str, Any]  # epoch, position, order (the epoch's shuffled indices), seed
    extra: dict[str, Any] = field(default_factory=dict)  # counters, config and data hashes
    path: Path | None = None


def checkpoint_dirs(root: Path) -> list[Path]:
    """The finished checkpoint folders, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(root: Path, ckpt: Checkpoint, keep: int = 2) -> Path:
    """Write ``ckpt`` atomically under ``root``; prune all but the newest ``keep``."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{ckpt.step:06d}"
    tmp = root / f".tmp-step-{ckpt.step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        opt_tensors, opt_rest = _split_optimizer(ckpt.optimizer)
        opt_tensors[_TORCH_RNG] = ckpt.rng["torch"]
        rng = {k: v for k, v in ckpt.rng.items() if k != "torch"}
        save_file(_contiguous(ckpt.adapter), str(tmp / ADAPTER))
        save_file(_contiguous(opt_tensors), str(tmp / OPTIMIZER))
        state = {
            "format": FORMAT,
            "step": ckpt.step,
            "optimizer": opt_rest,
            "scheduler": ckpt.scheduler,
            "rng": rng,
            "cursor": ckpt.cursor,
            "extra": ckpt.extra,
        }
        (tmp / STATE).write_text(json.dumps(state))
        files = {n: _describe(tmp / n) for n in (ADAPTER, OPTIMIZER, STATE)}
        for name in files:
            _fsync(tmp / name)
        manifest = {"format": FORMAT, "step": ckpt.step, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync(tmp / MANIFEST)
        if final.exists():  # a re-run of the same step (after a resume): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in checkpoint_dirs(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def verify(path: Path) -> dict[str, Any]:
    """The manifest of a whole, intact checkpoint; :class:`CheckpointError` otherwise."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"checkpoint {path} is incomplete: it has no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable {MANIFEST} ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: format {manifest.get('format')} unsupported")
    for name, want in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path} is missing {name}")
        if _describe(file) != want:
            raise CheckpointError(f"checkpoint {path} is corrupt: {name} does not match its sha256")
    return dict(manifest)


def load(path: Path) -> Checkpoint:
    """Read a checkpoint folder after checking it against its manifest."""
    from safetensors.torch import load_file

    verify(path)
    try:
        state = json.loads((path / STATE).read_text())
        adapter = load_file(str(path / ADAPTER))
        opt_tensors = load_file(str(path / OPTIMIZER))
    except (ValueError, OSError) as exc:  # hash matched but unreadable: a format bug
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    rng = dict(state["rng"])
    rng["torch"] = opt_tensors.pop(_TORCH_RNG)
    return Checkpoint(
        step=int(state["step"]),
        adapter=adapter,
        optimizer=_join_optimizer(opt_tensors, state["optimizer"]),
        scheduler=state["scheduler"],
        rng=rng,
        cursor=state["cursor"],
        extra=state["extra"],
        path=path,
    )


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest intact checkpoint folder of a run (``run_dir/checkpoints``), checked
    against its manifest; None when there is none, :class:`CheckpointError` when
    there are some and none is intact."""
    errors: list[str] = []
    for path in reversed(checkpoint_dirs(Path(run_dir) / "checkpoints")):
        try:
            verify(path)
            return path
        except CheckpointError as exc:
            errors.append(str(exc))
    if errors:
        raise CheckpointError("no usable checkpoint: " + "; ".join(errors))
    return None


def latest(root: Path) -> Checkpoint | None:
    """The newest intact checkpoint under ``root``; None when there is none at all.

    A newer checkpoint that fails verification is logged and skipped (an older
    one is kept for this); :class:`CheckpointError` when every one fails.
    """
    dirs = checkpoint_dirs(root)
    errors: list[str] = []
    for path in reversed(dirs):
        try:
            return load(path)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
            errors.append(str(exc))
    if errors:
        raise CheckpointError("no usable checkpoint: " + "; ".join(errors))
    return None


def clean_partial(root: Path) -> None:
    """Remove temporary folders left by a process killed while writing."""
    if root.is_dir():
        for p in root.glob(".tmp-step-*"):
            shutil.rmtree(p, ignore_errors=True)


# -- RNG ---------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }


def restore_rng(rng: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])


# -- helpers -----------------------------------------------------------------------


def _split_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state dict as tensors (``state.<param>.<key>``) and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in sd["state"].items():
        for key, value in entries.items():
            if hasattr(value, "detach"):  # a tensor
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for index, entries in rest["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": rest["param_groups"]}


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


def _describe(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "size": path.stat().st_size}


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
