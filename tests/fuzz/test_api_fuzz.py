"""Issue 21: no input makes the server fail. Schemathesis sends every operation of the
served OpenAPI schema, as a user and as an admin, with a fixed seed: the coverage
phase (boundary and invalid values of every parameter and field), then generated
examples, then stateful scenarios along the links it infers (create a thread, then
read, rename and delete it...). Every response must be below 500 and match the schema
declared for its status (``default``: the ``{detail, code}`` error body).

Nothing is excluded. Two kinds of call are redirected so that they cannot end this
test's own session (which would turn the rest of the run into 401s):

- ``POST /api/v1/auth/logout`` is sent with a token of its own (a fresh login);
- admin actions on the two accounts the test acts as (their password, role or
  active flag, found in responses) target an account nobody uses instead.

Two bug classes get help beyond random generation: a dictionary of values that broke
servers before (NUL, huge integers...) is mixed into generated parameters, and every
free-text path and query parameter carries the example "a\\x00b", so the examples phase
sends NUL to each on every run (PostgreSQL refuses NUL in text).

CI runs a bounded pass; ``make fuzz`` a longer one (tests/fuzz/conftest.py).
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.stateful.state_machine import APIStateMachine

from tests.fuzz.conftest import (
    COVERAGE,
    EXAMPLES,
    ONLY,
    ROLES,
    SEED,
    STATEFUL_SCENARIOS,
    STATEFUL_STEPS,
    FuzzPass,
    Servers,
)

pytestmark = pytest.mark.timeout(max(900, 60 * EXAMPLES))  # per pass

LOGOUT = "POST /api/v1/auth/logout"
NOBODY = "fuzz-nobody"  # an account that does not exist: such calls answer 404
NASTY_STRINGS = [
    "\x00",
    "a\x00b",
    "%00",
    "\u202etxt.exe",
    "\u200b",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🤖",
    "../../etc/passwd",
    "' OR 1=1 --",
    "\\",
    "null",
    "NaN",
    "   ",
    "x" * 5000,
]
NASTY_INTEGERS = [0, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]


def fuzz_config(base_url: str, headers: dict[str, str]) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "headers": headers,
            "suppress-health-check": ["all"],
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
            },
            # Values that broke servers before, mixed into every string and integer
            # parameter and top-level field (kept only where the schema allows them).
            "dictionaries": {
                "nasty-strings": {"values": NASTY_STRINGS},
                "nasty-integers": {"values": NASTY_INTEGERS},
            },
            "generation": {
                "max-examples": EXAMPLES,
                "database": "none",
                "dictionaries": {
                    "string": {"dictionary": "nasty-strings", "probability": 0.3},
                    "integer": {"dictionary": "nasty-integers", "probability": 0.3},
                },
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": COVERAGE},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
            },
        }
    )


@pytest.fixture
def api_schema(fuzz_pass: FuzzPass) -> Any:
    raw = fuzz_pass.server.api.client.get("/openapi.json").json()
    loaded = schemathesis.openapi.from_dict(
        with_nul_examples(raw), config=fuzz_config(fuzz_pass.server.url, fuzz_pass.headers)
    )
    return loaded.include(path_regex=ONLY) if ONLY else loaded  # for the stateful test


def with_nul_examples(raw: dict[str, Any]) -> dict[str, Any]:
    """Every free-text path and query parameter gets the example "a\\x00b", which the
    examples phase sends every run: PostgreSQL refuses NUL in text, and random
    generation only rarely produces one."""
    for operations in raw["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                text = schema.get("type") == "string" and not {"pattern", "enum"} & set(schema)
                if parameter["in"] in ("path", "query") and text:
                    schema["examples"] = ["a\x00b"]
    return raw


def protect_own_session(case: Any, fuzz: FuzzPass) -> None:
    """Redirect the two kinds of call that would end this test's session (see above)."""
    if case.path_parameters and case.path_parameters.get("username") in ROLES.values():
        case.path_parameters["username"] = NOBODY
    own = fuzz.headers["Authorization"]
    if case.operation.label == LOGOUT and (case.headers or {}).get("Authorization") == own:
        case.headers["Authorization"] = fuzz.server.fresh_login(fuzz.role)["Authorization"]


schema = schemathesis.pytest.from_fixture("api_schema")
if ONLY:
    schema = schema.include(path_regex=ONLY)


@schema.parametrize()
def test_every_operation(case: Any, fuzz_pass: FuzzPass) -> None:
    protect_own_session(case, fuzz_pass)
    case.call_and_validate()


def test_stateful_scenarios(api_schema: Any, fuzz_pass: FuzzPass) -> None:
    """Scenarios draw ids from earlier responses, so the server's state shapes what is
    generated and Hypothesis may meet a scenario it cannot replay (Flaky). As
    Schemathesis' own runner does, the checks that failed when run are what count, and
    a new suite (the next seed) goes on until the scenarios are spent."""
    base: type[APIStateMachine] = api_schema.as_state_machine()
    failures: list[FailureGroup] = []
    scenarios = 0

    class Machine(base):  # type: ignore[valid-type, misc]
        def before_call(self, case: Any) -> None:
            protect_own_session(case, fuzz_pass)

        def validate_response(self, response: Any, case: Any, *args: Any, **kw: Any) -> None:
            try:
                super().validate_response(response, case, *args, **kw)
            except FailureGroup as failure:
                failures.append(failure)
                raise

        def teardown(self) -> None:
            nonlocal scenarios
            scenarios += 1
            super().teardown()

    for suite in range(SEED, SEED + 20):
        if scenarios >= STATEFUL_SCENARIOS:
            break
        Machine.rule_order_seed = suite
        try:
            hypothesis.seed(suite)(Machine).run(
                settings=hypothesis.settings(
                    max_examples=STATEFUL_SCENARIOS - scenarios,
                    stateful_step_count=STATEFUL_STEPS,
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
            )
            break
        except Flaky:
            if failures:
                raise failures[0] from None


def test_lone_surrogates_are_refused(fuzz_servers: Servers) -> None:
    """A JSON ``\\ud800`` escape decodes to text no database can store (generated
    strings never hold one, so they are sent by hand), on each chat route."""
    server = fuzz_servers.get("sqlite")
    api = server.api
    who = api.create_user(server.headers["admin"], "fuzz-surrogates")  # fuzzing spent its keys
    key = api.client.post("/api/v1/keys", json={"name": "surrogates"}, headers=who)
    assert key.status_code == 201, key.text
    by_key = {"Authorization": f"Bearer {key.json()['key']}"}
    for path, headers, body in [
        ("/api/v1/conversation/chat", who, '{"message": "a\\udc00b"}'),
        ("/api/v1/conversation/chat/stream", who, '{"message": "\\ud800"}'),
        (
            "/v1/chat/completions",
            by_key,
            '{"model": "m", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        ),
    ]:
        headers = {**headers, "Content-Type": "application/json"}
        r = api.client.post(path, content=body, headers=headers)
        assert r.status_code in (400, 422) and "surrogate" in r.text, (path, r.text)
