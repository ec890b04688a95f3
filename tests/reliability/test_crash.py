"""`mongars bench crash`, short: real servers killed -9 under load, then everything
acknowledged checked against the database (the 20-round run: `make bench-crash`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mongars.bench.crash import CrashOptions, CrashReport, run_crash

# ONNX queries off: each fresh data folder would export the model first (not under test).
OPTIONS = CrashOptions(
    concurrency=4,
    kill_min_s=1.0,
    kill_max_s=2.5,
    catch_up_s=60,
    ready_timeout_s=180,
    server_env={"MONGARS_MEMORY__EMBED_QUERY_ONNX": "false"},
)


def _assert_durable(report: CrashReport) -> None:
    found = report.findings
    assert found.problems == []
    assert found.violations == 0
    assert report.memory_lag_s is not None, "memory indexing did not catch up"
    # Something was acknowledged and checked on every path, or the run proved nothing.
    assert found.acked["turns"] >= 5 and found.acked["documents"] >= 1, found.acked
    assert found.checked >= found.acked["turns"] + found.acked["documents"]
    assert report.server_errors == []
    assert report.failed == {}, "requests failed while the server was up"


@pytest.mark.slow
def test_crash_sqlite(tmp_path: Path) -> None:
    _assert_durable(run_crash("sqlite", replace(OPTIONS, rounds=3, seed=11), tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_crash_postgres(tmp_path: Path, postgres_url: str) -> None:
    opts = replace(OPTIONS, rounds=2, seed=12)
    _assert_durable(run_crash("postgres", opts, tmp_path, postgres_url))
