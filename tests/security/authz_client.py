"""The matrix's client: requests as one identity or another (token, API key, console
session, none), the leak and status checks, and snapshots of what A and the admin own."""

from __future__ import annotations

import concurrent.futures
import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mongars.web.session import CSRF_COOKIE, SESSION_COOKIE, csrf_token
from tests.security.authz_routes import (
    ESCALATE,
    ID_FIELDS,
    NOT_IDS,
    PATH_PARAMS,
    Endpoint,
    sample_body,
)
from tests.security.authz_world import MARK, Person, World, bearer

NONCE = "authz-matrix-csrf-nonce-0123456789abcdef"
VOLATILE = {"exported_at", "last_used_at"}  # change when A reads, not when B tries


@dataclass
class Identity:
    name: str
    headers: dict[str, str]
    cookies: dict[str, str]


class Matrix:
    """Sends requests as one identity or another and records what went wrong."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.client = world.client
        self.sent: Counter[str] = Counter()
        self.problems: list[str] = []
        secret = world.api.runtime.secret
        csrf = {"X-CSRF-Token": csrf_token(secret, NONCE)}
        jar = {CSRF_COOKIE: NONCE}
        a, b = world.a, world.b
        self.anonymous = Identity("anonymous", csrf, jar)
        self.b_token = Identity("B token", {**csrf, **b.headers}, jar)
        self.b_key = Identity("B API key", {**csrf, **bearer(b.api_key)}, jar)
        self.b_console = Identity("B console", csrf, {**jar, SESSION_COOKIE: b.token})
        self.a_token = Identity("A token", {**csrf, **a.headers}, jar)
        self.admin_token = Identity("admin token", {**csrf, **world.admin.headers}, jar)
        # A's name and ids that B cannot guess: seeing one B did not send is a leak. (Not
        # the collection names: each user has their own, B may make one of the same name.)
        self.a_secret_ids = [
            str(v) for kind in ("username", "thread", "generation") for v in a.ids.get(kind, [])
        ] + [a.api_key, a.api_key[:12]]

    # -- sending -----------------------------------------------------------------------

    def send(
        self,
        who: Identity,
        ep: Endpoint,
        values: dict[str, Any],
        query: dict[str, Any] | None = None,
        ids: dict[str, Any] | None = None,
    ) -> Any:
        url = ep.url(values) if ep.method != "MOUNT" else ep.path + "/"
        body = sample_body(ep.body, ids or {})
        kwargs: dict[str, Any] = {}
        if ep.form:
            files = {k: ("probe.txt", v) for k, v in body.items() if isinstance(v, bytes)}
            data = {k: _form(v) for k, v in body.items() if not isinstance(v, bytes | None)}
            kwargs = {"data": data, "files": files or None}
        elif ep.body is not None:
            kwargs = {"json": body}
        self.client.cookies.clear()
        for name, value in who.cookies.items():
            self.client.cookies.set(name, value)
        try:
            method = "GET" if ep.method == "MOUNT" else ep.method
            r = self.client.request(
                method, url, params=query, headers=who.headers, follow_redirects=False, **kwargs
            )
        finally:
            self.client.cookies.clear()
        self.sent[who.name] += 1
        return r

    def query(self, ep: Endpoint, probe: bool | str) -> dict[str, Any]:
        """Required query parameters, and A's ids (or an admin's flag) in every id
        parameter (``probe`` True) or in the one named."""
        out: dict[str, Any] = {}
        for name, required in ep.query:
            if name.endswith("_id") and name not in ID_FIELDS and name not in NOT_IDS:
                self.problems.append(f"{ep}: query parameter {name!r} is not mapped in ID_FIELDS")
            probed = probe is True or probe == name
            if probed and name in ID_FIELDS:
                out[name] = self.a_value(name)
            elif probed and name in ESCALATE:
                out[name] = ESCALATE[name]
            elif required:
                out[name] = {"q": "SECRET", "is_admin": "false", "is_active": "false"}.get(
                    name, "1"
                )
        return out

    def a_value(self, field: str) -> Any:
        owner, kind = ID_FIELDS[field]
        value = self.person(owner).ids[kind][0]
        return [value] if field in ("collections", "repositories") else value

    def person(self, owner: str) -> Person:
        return {"a": self.world.a, "admin": self.world.admin, "b": self.world.b}[owner]

    def path_values(self, ep: Endpoint) -> list[dict[str, Any]]:
        """Every combination of values for the path's parameters (A's ids, the admin's
        objects, or the names a path takes)."""
        choices = []
        for name in ep.params:
            source = PATH_PARAMS.get(name)
            if source is None:
                pytest.fail(
                    f"{ep}: path parameter {name!r} is not mapped to a kind of object: "
                    "add it to PATH_PARAMS in tests/security/authz_routes.py"
                )
            if source[0] == "literal":
                choices.append([(name, v) for v in source[1:]])
            elif source[0] == "public":
                choices.append([(name, self.world.api.runtime.llm.model_id)])
            else:
                found = self.person(source[0]).ids.get(source[1])
                assert found, f"{ep}: the world has no {source[1]} of {source[0]}"
                choices.append([(name, v) for v in found])
        return [dict(combo) for combo in itertools.product(*choices)]

    # -- checking ----------------------------------------------------------------------

    def check(self, who: Identity, ep: Endpoint, r: Any, expect: str, sent: str = "") -> None:
        where = f"{who.name}: {r.request.method} {r.request.url.raw_path.decode()}"
        status = r.status_code
        if expect == "401" and status != 401:
            self.problems.append(f"{where}: {status}, expected 401: {r.text[:200]}")
        elif expect == "login" and not (
            status == 303 and r.headers.get("location", "").startswith("/login")
        ):
            self.problems.append(f"{where}: {status}, expected a redirect to /login")
        elif expect in ("403", "404") and status != int(expect):
            self.problems.append(f"{where}: {status}, expected {expect}: {r.text[:200]}")
        elif expect == "403" and "CSRF" in r.text:
            self.problems.append(f"{where}: refused by the CSRF check, not by the role")
        elif status >= 500:
            self.problems.append(f"{where}: {status}: {r.text[:200]}")
        self.check_leaks(where, r, sent + str(r.request.url) + r.request.content.decode("latin-1"))

    def check_leaks(self, where: str, r: Any, sent: str) -> None:
        text = r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        self.check_text(where, text, sent)

    def check_text(self, where: str, text: str, sent: str = "") -> None:
        markers = [m for m in MARK.findall(text) if m[0] in "AZ"]
        ids = [i for i in self.a_secret_ids if i in text and i not in sent]
        if markers or ids:
            self.problems.append(f"{where}: LEAK of {sorted(set(markers + ids))}")


def _form(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def snapshot(m: Matrix, eps: list[Endpoint]) -> dict[str, Any]:
    """Everything A reads of A's own objects, and the admin of the admin's objects (JSON
    routes), volatile fields left out."""
    out: dict[str, Any] = {}
    for ep in eps:
        if ep.flavour != "api" or ep.method != "GET":
            continue
        if ep.access == "user" and all(PATH_PARAMS[p][0] == "a" for p in ep.params):
            who = m.a_token
        elif ep.access == "admin" and ep.params:
            who = m.admin_token
        else:
            continue
        for values in m.path_values(ep):
            r = m.send(who, ep, values, m.query(ep, probe=False))
            kind = r.headers.get("content-type", "")
            if kind.startswith("application/json"):
                out[f"{r.status_code} {r.request.url}"] = _strip(r.json())
            elif not kind.startswith("text/event-stream"):  # downloads
                out[f"{r.status_code} {r.request.url}"] = r.text
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@contextmanager
def ws_session(client: TestClient, url: str) -> Iterator[Any]:
    session = client.websocket_connect(url)
    ws = session.__enter__()
    try:
        yield ws
    finally:
        # Leaving, the test client cancels the server's handler; when that handler is
        # still winding down its tasks, the cancellation surfaces here: not a failure.
        with suppress(concurrent.futures.CancelledError):
            session.__exit__(None, None, None)
