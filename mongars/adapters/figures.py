"""Per-version figures of the answers each adapter version gave: turns, thumbs down
and up, confidence and latency, with 95 % intervals, and whether the canary is
significantly worse than the active version."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.adapters.repository import AdapterRepository
from mongars.adapters.schemas import Comparison, VersionFigures
from mongars.adapters.stats import mean_interval, wilson, worse_p_value
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work


async def compare_versions(
    sessions: async_sessionmaker[AsyncSession], days: float = 30.0
) -> Comparison:
    """Thumbs-down rate, confidence and latency of each version's answers, with
    95 % intervals, and whether the canary is significantly worse than the active."""
    since = utcnow() - timedelta(days=days)
    async with unit_of_work(sessions) as session:
        repo = AdapterRepository(session)
        figures = await repo.turn_figures(since)
        p = await repo.pointer()
    versions = [figures_out(f) for f in figures]
    by_version = {f.version: f for f in figures}
    worse = None
    if p.canary_id is not None:
        c, a = by_version.get(p.canary_id), by_version.get(p.active_id)
        if c is not None and a is not None:
            worse = worse_p_value(c.down, c.turns, a.down, a.turns)
    return Comparison(
        since=since,
        active=p.active_id,
        canary=p.canary_id,
        versions=versions,
        canary_worse_p=worse,
    )


def figures_out(f: Any) -> VersionFigures:
    conf = mean_interval(f.confidence_sum, f.confidence_sq, f.confidence_n)
    lat = mean_interval(f.latency_sum, f.latency_sq, f.turns)
    return VersionFigures(
        version=f.version,
        turns=f.turns,
        thumbs_down=f.down,
        thumbs_up=f.up,
        thumbs_down_rate=f.down / f.turns if f.turns else None,
        thumbs_down_ci=wilson(f.down, f.turns),
        confidence_mean=f.confidence_sum / f.confidence_n if f.confidence_n else None,
        confidence_ci=_finite(conf),
        latency_ms_mean=f.latency_sum / f.turns if f.turns else None,
        latency_ms_ci=_finite(lat),
    )


def _finite(pair: tuple[float, float]) -> tuple[float | None, float | None]:
    return tuple(None if x != x else round(x, 4) for x in pair)  # type: ignore[return-value]
