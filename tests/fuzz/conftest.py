"""The servers under fuzzing: a real ``uvicorn`` on loopback with the scripted model,
memory and documents on (the real embedding model, shared with the session), an admin
and a user to act as; one on SQLite and one on PostgreSQL.

A pass is a role on a database. CI runs two: the user on SQLite and the admin (who
reaches every route's logic) on PostgreSQL, whose stricter types (INTEGER ids, no NUL
in text) find what SQLite lets through. ``make fuzz`` runs all four, longer (same
seed); these knobs come from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from mongars.app import create_app
from tests.conftest import LiveApi, LiveServer, fresh_database, make_settings
from tests.fakes import ScriptedLLM

ADMIN, USER = "fuzz-admin", "fuzz-user"
ROLES = {"user": USER, "admin": ADMIN}
SEED = int(os.environ.get("MONGARS_FUZZ_SEED", "21"))
EXAMPLES = int(os.environ.get("MONGARS_FUZZ_EXAMPLES", "4"))  # generated, per operation
COVERAGE = os.environ.get("MONGARS_FUZZ_COVERAGE", "1") != "0"  # boundary/invalid values
STATEFUL_SCENARIOS = int(os.environ.get("MONGARS_FUZZ_SCENARIOS", "25"))
STATEFUL_STEPS = int(os.environ.get("MONGARS_FUZZ_STEPS", "8"))
FULL = os.environ.get("MONGARS_FUZZ_FULL", "0") == "1"  # both roles on both databases
# A regular expression on the path: only those operations (to reproduce a failure).
ONLY = os.environ.get("MONGARS_FUZZ_ONLY", "")
# Memory and documents need the embedding model (a session fixture most runs load anyway).
FEATURES = os.environ.get("MONGARS_FUZZ_FEATURES", "1") != "0"

PASSES = (
    [(role, db) for db in ("sqlite", "postgres") for role in ROLES]
    if FULL
    else [("user", "sqlite"), ("admin", "postgres")]
)


@dataclass
class FuzzServer:
    api: LiveApi
    headers: dict[str, dict[str, str]]  # role -> its Authorization header

    @property
    def url(self) -> str:
        return self.api.server.url

    def fresh_login(self, role: str) -> dict[str, str]:
        """A token of its own, for a call that revokes the token it is sent with."""
        return self.api.login(ROLES[role])


@dataclass
class FuzzPass:
    role: str
    server: FuzzServer

    @property
    def headers(self) -> dict[str, str]:
        return self.server.headers[self.role]


class Servers:
    """One server per database, started when a pass first needs it."""

    def __init__(self, request: pytest.FixtureRequest, stack: ExitStack) -> None:
        self.request, self.stack = request, stack
        self.started: dict[str, FuzzServer] = {}

    def get(self, db: str) -> FuzzServer:
        if db not in self.started:
            self.started[db] = self.stack.enter_context(self._start(db))
        return self.started[db]

    @contextmanager
    def _start(self, db: str) -> Iterator[FuzzServer]:
        with ExitStack() as stack:
            overrides = {}
            if db == "postgres":
                pg = self.request.getfixturevalue("postgres_url")
                overrides["database_url"] = stack.enter_context(fresh_database(pg, "fuzz_"))
            tmp = self.request.getfixturevalue("tmp_path_factory").mktemp(f"fuzz-{db}")
            embedder = self.request.getfixturevalue("embedder") if FEATURES else None
            settings = make_settings(
                tmp,
                memory={"enabled": FEATURES},
                research={"documents": FEATURES},
                # POST /token is fuzzed with made-up accounts from one address: the
                # login limits would then refuse the logins this test needs itself.
                auth={
                    "login_limit_per_account": "1000/minute",
                    "login_limit_per_address": "1000/minute",
                },
                **overrides,
            )
            app = create_app(settings, llm=ScriptedLLM(), embedder=embedder)
            server = stack.enter_context(LiveServer(app))
            api = LiveApi(server, app)
            stack.callback(api.client.close)  # type: ignore[attr-defined]
            admin = api.setup_admin(ADMIN)
            user = api.create_user(admin, USER)
            yield FuzzServer(api, {"admin": admin, "user": user})


@pytest.fixture(scope="module")
def fuzz_servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(request, stack)


@pytest.fixture(
    params=[
        pytest.param(p, id=f"{p[0]}-{p[1]}", marks=[pytest.mark.postgres] * (p[1] == "postgres"))
        for p in PASSES
    ]
)
def fuzz_pass(request: pytest.FixtureRequest, fuzz_servers: Servers) -> FuzzPass:
    role, db = request.param
    return FuzzPass(role, fuzz_servers.get(db))
