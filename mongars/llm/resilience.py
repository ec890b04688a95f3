"""Resilience shared by every HTTP provider (Ollama, OpenAI-compatible, Ray).

A :class:`ResilientClient` holds one provider's endpoints. Each request goes to the
next endpoint in turn whose :class:`CircuitBreaker` lets it through. Until the first
streamed item, a failed attempt is retried (tenacity: exponential backoff with jitter,
and at least the endpoint's ``Retry-After``, capped), on another endpoint when there is
one; after it, never: part of the answer has been shown, so the error surfaces and
nothing is stored. What counts as a failure, a scaling event or a rejection is decided
in mongars/llm/outcomes.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from mongars.errors import ProviderError, ProviderUnavailable
from mongars.llm.breaker import BreakerState, CircuitBreaker
from mongars.llm.outcomes import (
    BREAKER_FAILURES,
    COUNTED_FAILURES,
    RETRIED,
    Failure,
    Outcome,
    StatusError,
    classify_exception,
    classify_status,
    endpoint_label,
)
from mongars.settings import is_http_url

if TYPE_CHECKING:
    from mongars.observability.metrics import Metrics
    from mongars.settings import LLMSettings

T = TypeVar("T")
log = logging.getLogger(__name__)
READY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Policy:
    retries: int = 3  # attempts after the first, before the first token only
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    breaker_threshold: int = 5  # consecutive failures that open the breaker
    breaker_cooldown_s: float = 30.0  # open this long before one probe request
    retry_after_max_s: float = 30.0  # longest Retry-After honoured

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> Policy:
        return cls(
            retries=llm.retries,
            backoff_initial_s=llm.backoff_initial_s,
            backoff_max_s=llm.backoff_max_s,
            breaker_threshold=llm.breaker_threshold,
            breaker_cooldown_s=llm.breaker_cooldown_s,
            retry_after_max_s=llm.retry_after_max_s,
        )


@dataclass
class Endpoint:
    url: str  # without credentials: the label on metrics and logs
    client: httpx.AsyncClient
    breaker: CircuitBreaker
    not_before: float = 0.0  # clock time before which its Retry-After asks us to wait


class _Retry(Exception):
    """Raised inside the retry loop for an attempt worth another try."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure.error))
        self.failure = failure


@dataclass
class _Attempts:
    """What the attempts of one request have seen so far."""

    tried: list[Endpoint] = field(default_factory=list)
    last: Failure | None = None


@dataclass
class _Opened(Generic[T]):
    endpoint: Endpoint
    stack: AsyncExitStack
    items: AsyncIterator[T]
    first: list[T]  # the first item, or nothing for an empty stream
    started: float


class _WaitForEndpoint(wait_base):
    """Backoff with jitter, but at least until some endpoint's Retry-After has passed."""

    def __init__(self, client: ResilientClient, backoff: wait_base) -> None:
        self.client, self.backoff = client, backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        return max(self.backoff(retry_state), self.client.seconds_until_free())


class ResilientClient:
    """One provider's endpoints behind rotation, circuit breakers and retries."""

    def __init__(
        self,
        provider: str,
        what: str,
        urls: Sequence[str],
        timeout_s: float,
        *,
        api_key: str = "",
        policy: Policy | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        urls = list(dict.fromkeys(u.strip().rstrip("/") for u in urls if u.strip()))
        if not urls:
            raise ValueError(f"{what}: no endpoint configured (MONGARS_LLM__BASE_URLS)")
        for url in urls:
            if not is_http_url(url):
                raise ValueError(f"{what}: {endpoint_label(url)!r} is not an http(s) URL")
        self.provider, self.what, self.metrics, self.clock = provider, what, metrics, clock
        self.policy = policy or Policy()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self.endpoints = [self._endpoint(url, headers, timeout) for url in urls]
        self._cursor = 0

    def _endpoint(self, url: str, headers: dict[str, str], timeout: httpx.Timeout) -> Endpoint:
        label = endpoint_label(url)

        def changed(state: BreakerState) -> None:
            log.warning("%s endpoint %s: circuit breaker %s", self.what, label, state.name)
            if self.metrics is not None:
                self.metrics.llm_breaker_state.set(
                    int(state), {"provider": self.provider, "endpoint": label}
                )

        breaker = CircuitBreaker(
            self.policy.breaker_threshold, self.policy.breaker_cooldown_s, changed, self.clock
        )
        if self.metrics is not None:  # the series exists from the start
            self.metrics.llm_breaker_state.set(0, {"provider": self.provider, "endpoint": label})
        client = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)
        return Endpoint(label, client, breaker)

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.aclose()

    # --- choosing an endpoint ---------------------------------------------------

    def pick(self, tried: Sequence[Endpoint]) -> Endpoint:
        """The next endpoint in turn that its breaker admits, untried ones first."""
        n, now = len(self.endpoints), self.clock()
        order = [self.endpoints[(self._cursor + i) % n] for i in range(n)]
        self._cursor = (self._cursor + 1) % n
        admitted = [e for e in order if e.breaker.admits()]
        free = [e for e in admitted if e.not_before <= now] or admitted
        for endpoint in [e for e in free if e not in tried] or free:
            if endpoint.breaker.acquire():
                return endpoint
        raise self._all_failing()

    def seconds_until_free(self) -> float:
        """0 when an admitted endpoint may be asked now, else until the first may."""
        now = self.clock()
        waits = [max(0.0, e.not_before - now) for e in self.endpoints if e.breaker.admits()]
        return min(waits, default=0.0)

    def _all_failing(self) -> ProviderUnavailable:
        probes = [e.breaker.probe_in() for e in self.endpoints]
        next_probe = max(1, round(min(probes)))
        n = len(self.endpoints)
        return ProviderUnavailable(
            f"all {n} {self.what} endpoint{'s' if n > 1 else ''} "
            f"{'are' if n > 1 else 'is'} failing; next probe in {next_probe} s",
            headers={"Retry-After": str(next_probe)},
        )

    def states(self) -> list[dict[str, Any]]:
        """Each endpoint's breaker, for the console."""
        return [
            {
                "endpoint": e.url,
                "state": e.breaker.state.name.lower().replace("_", "-"),
                "failures": e.breaker.failures,
                "probe_in_s": round(e.breaker.probe_in(), 1),
            }
            for e in self.endpoints
        ]

    async def ready(self, path: str) -> bool:
        """Whether an endpoint answers ``path``; those the breaker admits are asked first."""
        for endpoint in sorted(self.endpoints, key=lambda e: not e.breaker.admits()):
            try:
                response = await endpoint.client.get(path, timeout=READY_TIMEOUT_S)
            except httpx.HTTPError:
                continue
            if response.is_success:
                return True
        return False

    # --- requests ---------------------------------------------------------------

    async def request(
        self, method: str, path: str, json: Any = None, *, retries: int | None = None
    ) -> httpx.Response:
        """A small non-streaming call (list models, count tokens), retried alike."""

        async def whole(response: httpx.Response) -> AsyncIterator[httpx.Response]:
            await response.aread()
            yield response

        stream = self.stream(method, path, json, whole, record=False, retries=retries)
        try:
            async for response in stream:
                return response
        finally:
            await stream.aclose()
        raise ProviderError(f"{self.what} sent no answer")  # pragma: no cover

    async def stream(
        self,
        method: str,
        path: str,
        json: Any,
        parse: Callable[[httpx.Response], AsyncIterator[T]],
        *,
        record: bool = True,
        retries: int | None = None,
    ) -> AsyncGenerator[T, None]:
        """Items parsed from the answer of the first endpoint that gives one; failures
        before the first item are retried, those after it raised as domain errors."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt((self.policy.retries if retries is None else retries) + 1),
            wait=_WaitForEndpoint(
                self,
                wait_exponential_jitter(
                    multiplier=self.policy.backoff_initial_s,
                    max=self.policy.backoff_max_s,
                    jitter=self.policy.backoff_initial_s,
                ),
            ),
            retry=retry_if_exception_type(_Retry),
            reraise=True,
        )
        attempts = _Attempts()
        try:
            opened: _Opened[T] = await retrying(
                self._open, method, path, json, parse, attempts, record
            )
        except _Retry as exc:  # the attempts ran out: the last one's error
            raise exc.failure.error from exc.__cause__
        outcome = Outcome.CANCELLED
        try:
            async with opened.stack:
                if opened.first:  # the answer's first item, then the rest as it comes
                    yield opened.first[0]
                    async for item in opened.items:
                        yield item
            outcome = Outcome.OK
        except BaseException as exc:
            failure = classify_exception(exc, self.what)
            outcome = failure.outcome
            if failure.error is exc:
                raise
            raise failure.error from exc
        finally:
            self._settle(opened.endpoint, outcome, opened.started, record, answered=True)

    async def _open(
        self,
        method: str,
        path: str,
        json: Any,
        parse: Callable[[httpx.Response], AsyncIterator[T]],
        attempts: _Attempts,
        record: bool,
    ) -> _Opened[T]:
        """One attempt: an endpoint, its answer's status, then its first item."""
        try:
            endpoint = self.pick(attempts.tried)
        except ProviderUnavailable:
            if attempts.last is not None:  # the breakers opened while we tried: say why
                raise attempts.last.error from None
            raise
        attempts.tried.append(endpoint)
        started = self.clock()
        stack = AsyncExitStack()
        try:
            response = await stack.enter_async_context(
                endpoint.client.stream(method, path, json=json)
            )
            if not response.is_success:
                await response.aread()
                raise StatusError(classify_status(response, self.what))
            items = parse(response)
            if isinstance(items, AsyncGenerator):
                stack.push_async_callback(items.aclose)
            first = [await anext(items)]
        except StopAsyncIteration:
            first = []
        except BaseException as exc:
            await stack.aclose()
            failure = classify_exception(exc, self.what)
            self._settle(endpoint, failure.outcome, started, record, False, failure.retry_after)
            attempts.last = failure
            if failure.outcome in RETRIED:
                log.info("%s at %s: %s (retrying)", self.what, endpoint.url, failure.error)
                raise _Retry(failure) from exc
            if failure.error is exc:
                raise
            raise failure.error from exc
        return _Opened(endpoint, stack, items, first, started)

    def _settle(
        self,
        endpoint: Endpoint,
        outcome: Outcome,
        started: float,
        record: bool,
        answered: bool,
        retry_after: float | None = None,
    ) -> None:
        """Tell the breaker and the metrics how an attempt ended."""
        if outcome in BREAKER_FAILURES:
            endpoint.breaker.failed(started)
        elif outcome is Outcome.CANCELLED and not answered:
            endpoint.breaker.abandoned()
        elif outcome is not Outcome.ERROR:
            endpoint.breaker.succeeded()
        if retry_after is not None:
            wait = min(retry_after, self.policy.retry_after_max_s)
            endpoint.not_before = self.clock() + wait
        if not record or self.metrics is None:
            return
        labels = {"provider": self.provider, "endpoint": endpoint.url, "outcome": outcome.value}
        self.metrics.llm_requests.add(1, labels)
        self.metrics.llm_request_duration.record(self.clock() - started, labels)
        if outcome in COUNTED_FAILURES:
            self.metrics.llm_failures.add(1, labels)
        if outcome is Outcome.SCALING:
            self.metrics.llm_scaling_events.add(1, labels)
