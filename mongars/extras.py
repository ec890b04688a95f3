"""The optional extras (pyproject.toml): which are installed, and the error that
names the one a feature needs.

Serving needs none of them. The PyTorch stack (`training`) is checked before
work that needs it, so that a server without it answers 501 with the install
command instead of failing later in a child process with an ImportError.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from mongars.errors import ExtraNotInstalled

# what each need imports (the `training` extra holds them all)
TRAINING = ("torch", "transformers", "peft", "mlflow", "safetensors", "gguf")
EXPORT = ("torch", "transformers", "onnx", "onnxscript")  # the embedder's ONNX export
CAPTIONING = ("torch", "transformers")


def missing(modules: Iterable[str]) -> list[str]:
    """The modules that cannot be imported here (found without importing them)."""
    gone = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            gone.append(name)
    return gone


def require(modules: Iterable[str], what: str, extra: str = "training") -> None:
    """ExtraNotInstalled (501) naming ``what`` and the install command, if any is missing."""
    gone = missing(modules)
    if gone:
        raise ExtraNotInstalled(
            f"{what} needs the {extra} extra, not installed on this server "
            f"(missing: {', '.join(gone)}): pip install 'mongars[{extra}]'"
        )
