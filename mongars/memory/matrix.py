"""The arithmetic of the in-process vector indexes (memory/index.py for memories on
SQLite, research/index.py for document chunks).

With PyTorch installed the stored vectors are half precision: its CPU float16
matrix-vector product is about twice as fast as float32 and the cosines differ
by < 1e-3 (numpy has no fast float16 product). Without it (the serving image,
no `training` extra) they are float32, twice the memory, and numpy's BLAS
computes the product. Either way the product and the selection release the GIL.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


@functools.cache
def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def storage_dtype() -> type[np.floating[Any]]:
    """The dtype index matrices are kept in."""
    return np.float16 if _torch() is not None else np.float32


def products(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` as float32, one score per row."""
    query = np.ascontiguousarray(vector, dtype=np.float32)
    torch = _torch()
    if torch is not None and matrix.dtype == np.float16 and matrix.flags.writeable:
        scores = (torch.from_numpy(matrix) @ torch.from_numpy(query).half()).float()
        return np.asarray(scores.numpy())
    return np.asarray(matrix.astype(np.float32, copy=False) @ query, dtype=np.float32)


def top_k(scores: np.ndarray, k: int) -> tuple[list[float], list[int]]:
    """The ``k`` best scores and their positions, best first."""
    torch = _torch()
    if torch is not None:
        best = torch.topk(torch.from_numpy(scores), k)
        return best.values.tolist(), best.indices.tolist()
    picked = np.argpartition(-scores, k - 1)[:k]
    picked = picked[np.argsort(-scores[picked], kind="stable")]
    return scores[picked].tolist(), picked.tolist()
