"""The statistics behind canary comparisons and rollback decisions (stdlib only):
Wilson intervals for rates, normal intervals for means, a one-sided two-proportion
z-test. Small samples give wide intervals and large p-values: one bad answer never
decides anything."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % interval of a proportion k/n (Wilson score); (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(total: float, squares: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % interval of a mean from its sum and sum of squares (normal approximation)."""
    if n <= 0:
        return (math.nan, math.nan)
    mean = total / n
    if n == 1:
        return (mean, mean)
    var = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = z * math.sqrt(var / n)
    return (mean - half, mean + half)


def worse_p_value(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that rate 1 (k1/n1) is higher than rate 2 (k2/n2): pooled
    two-proportion z-test. 1.0 when either sample is empty or there is no variance."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class Rate:
    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.k, self.n)
