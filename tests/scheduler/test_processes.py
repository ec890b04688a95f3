"""The scheduler across real `mongars serve` processes: two on one PostgreSQL run each
scheduled job once (one leads; the other takes over when it dies), and a job killed
with -9 in its middle resumes at the next start without redoing its finished steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, free_port
from tests.llm.fake_servers import FakeOpenAI, openai_answer, serve
from tests.scheduler.plugin_jobs import read_log

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "mongars.cli"]


class Cluster:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MONGARS_DATA_DIR": str(tmp_path / "data"),
            "MONGARS_SECRET_KEY": "scheduler-secret-key-that-is-long-enough-00",
            "MONGARS_DB_AUTO_UPGRADE": "false",
            "MONGARS_LLM__PROVIDER": "openai",
            "MONGARS_LLM__MODEL": "m1",
            "MONGARS_MEMORY__ENABLED": "false",
            "MONGARS_RESEARCH__DOCUMENTS": "false",
            "MONGARS_LOG_LEVEL": "warning",
            "MONGARS_NEW_PASSWORD": PASSWORD,
            "MONGARS_SCHEDULER__LEADER_CHECK_S": "1",
            **env,
        }
        self.data_dir = tmp_path / "data"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        subprocess.run([*CLI, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        subprocess.run(
            [*CLI, "users", "create", "--admin", "root"],
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = self.data_dir.parent / f"server-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(port)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[url] = proc
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"a server process exited: {log.read_text()[-3000:]}"
            assert time.time() < deadline, "a server did not become ready"
            time.sleep(0.2)

    def kill(self, url: str) -> None:
        proc = self.procs.pop(url)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(timeout=30)


def admin(url: str) -> dict[str, str]:
    r = httpx.post(f"{url}/token", data={"username": "root", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def jobs(url: str, headers: dict[str, str]) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/api/v1/jobs", headers=headers, timeout=10).json())


def job_runs(url: str, headers: dict[str, str], name: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/jobs/{name}/runs?limit=200", headers=headers, timeout=10)
    return list(r.json()["items"])


@pytest.fixture
def llm_url() -> Iterator[str]:
    """A fake OpenAI-compatible server (no chat in these tests; the provider's start
    checks it is there)."""
    with serve(FakeOpenAI(chunks=openai_answer([(" ok", [-0.1])]))) as running:
        yield running.url


@pytest.fixture
def pg_cluster(tmp_path: Path, pg_database: str, llm_url: str) -> Iterator[Cluster]:
    cluster = Cluster(
        tmp_path,
        MONGARS_LLM__BASE_URL=llm_url,
        MONGARS_DATABASE_URL=pg_database,
        MONGARS_SCHEDULER__PLUGINS=json.dumps(["tests.scheduler.plugin_jobs:tick_jobs"]),
    )
    try:
        yield cluster
    finally:
        cluster.close()


def until_ticks(cluster: Cluster, n: int, timeout: float = 60) -> list[str]:
    """The tick runs logged, once there are ``n`` (DBOS's scheduler picks new schedules
    up within its polling interval, a few seconds; a loaded CI machine takes longer)."""
    deadline = time.monotonic() + timeout
    while True:
        logged = [run for job, run, _ in read_log(cluster.data_dir) if job == "test.tick"]
        if len(logged) >= n:
            return logged
        assert time.monotonic() < deadline, f"only {len(logged)} ticks"
        time.sleep(0.2)


@pytest.mark.postgres
def test_two_processes_on_postgres_run_each_scheduled_job_once(pg_cluster: Cluster) -> None:
    began = time.monotonic()
    a, b = pg_cluster.start(), pg_cluster.start()
    headers = admin(a)
    leaders = [jobs(u, headers)["leader"] for u in (a, b)]
    assert sorted(leaders) == [False, True]
    ticks = until_ticks(pg_cluster, 4)
    # Once a second from the leader's start, never more (two processes fire each time).
    assert len(ticks) <= time.monotonic() - began + 1
    assert len(ticks) == len(set(ticks)), "a scheduled time ran twice"
    done = [r for r in job_runs(b, headers, "test.tick") if r["state"] == "succeeded"]
    assert len(done) >= 3 and all(r["trigger"] == "schedule" for r in done)
    # The leader dies (kill -9): the other takes over and the schedule goes on.
    leader, other = (a, b) if leaders[0] else (b, a)
    pg_cluster.kill(leader)
    deadline = time.time() + 30
    while not jobs(other, headers)["leader"]:
        assert time.time() < deadline, "no process took over"
        time.sleep(0.5)
    logged = until_ticks(pg_cluster, len(read_log(pg_cluster.data_dir)) + 2)
    # At most the tick in flight at the kill ran again (its workflow recovered from
    # its last recorded step: at-least-once for a step a crash interrupted).
    assert len(logged) - len(set(logged)) <= 1, logged


def test_a_job_killed_9_resumes_without_redoing_finished_steps(
    tmp_path: Path, llm_url: str
) -> None:
    cluster = Cluster(
        tmp_path,
        MONGARS_LLM__BASE_URL=llm_url,
        MONGARS_SCHEDULER__PLUGINS=json.dumps(["tests.scheduler.plugin_jobs:manual_jobs"]),
        TEST_JOB_STEPS="6",
        TEST_JOB_STEP_S="0.7",
    )
    try:
        url = cluster.start()
        headers = admin(url)
        r = httpx.post(f"{url}/api/v1/jobs/test.slow/run", headers=headers)
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        deadline = time.time() + 30
        while len(read_log(cluster.data_dir)) < 3:
            assert time.time() < deadline, "the job did not start"
            time.sleep(0.05)
        cluster.kill(url)
        killed_at = len(read_log(cluster.data_dir))
        url = cluster.start()  # DBOS recovers the workflow from its last recorded step
        deadline = time.time() + 60
        while True:
            run = next(x for x in job_runs(url, headers, "test.slow") if x["id"] == run_id)
            if run["state"] not in ("queued", "running"):
                break
            assert time.time() < deadline, run
            time.sleep(0.3)
        assert run["state"] == "succeeded" and run["steps"] == 6, run
        seen = Counter(i for job, rid, i in read_log(cluster.data_dir) if rid == run_id)
        assert sorted(seen) == list(range(6))
        # Steps recorded before the kill ran once; only the one in flight may run again.
        again = [i for i, n in seen.items() if n > 1]
        assert len(again) <= 1 and all(i == killed_at - 1 for i in again), (seen, killed_at)
    finally:
        cluster.close()
