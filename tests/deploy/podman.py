"""podman as the image tests run it on these machines (docs/image.md: runc, cgroupfs,
events in a file, explicit ulimits), and small helpers around it."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def engine() -> list[str]:
    return [
        "podman",
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]


def limits() -> list[str]:
    import resource

    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 16384)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run([*engine(), *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def logs(name: str) -> str:
    done = subprocess.run(
        [*engine(), "logs", name], capture_output=True, text=True, timeout=60, check=False
    )
    return (done.stdout + done.stderr)[-4000:]


def wait_ready(client: httpx.Client, name: str, start: float, limit_s: float) -> httpx.Response:
    """/ready's 200 answer from the server in container ``name``, polled until
    ``limit_s`` after ``start``; fails with the container's log if it stops or never
    gets ready."""
    ready = None
    while time.monotonic() - start < limit_s:
        try:
            ready = client.get("/ready")
        except httpx.TransportError:
            ready = None
        if ready is not None and ready.status_code == 200:
            return ready
        state = podman("inspect", "--format", "{{.State.Status}}", name).strip()
        assert state == "running", logs(name)
        time.sleep(0.2)
    raise AssertionError(f"not ready in {limit_s:.0f} s\n{logs(name)}")
