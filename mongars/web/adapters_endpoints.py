"""Console page for the adapter registry (admins): what serves now, every version with
its metrics and gate reasons, approve / reject / activate / canary / rollback /
deactivate with an optional note, the versions' answer figures side by side, and the
change history. The registry does the work and the audit (docs/adapters.md); a refused
action (409 and the like) comes back as an error on the page, with its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from mongars.adapters.endpoints import Registry
from mongars.adapters.registry import AdapterRegistry
from mongars.adapters.schemas import PointerOut
from mongars.auth.models import User
from mongars.errors import DomainError, InvalidInput
from mongars.web.render import HtmlRoute, redirect, render, safe_next
from mongars.web.session import CsrfChecked, WebAdmin

router = APIRouter(prefix="/admin/adapters", route_class=HtmlRoute, include_in_schema=False)

VersionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
Days = Annotated[float, Query(gt=0, le=3650)]
Note = Annotated[str, Form(max_length=2000)]
Share = Annotated[str, Form(max_length=32)]
Back = Annotated[str | None, Form(max_length=200)]
PAGE = 20
CHANGES = 50
NO_ADAPTERS = (
    "This server's model provider cannot load adapters: Ollama and OpenAI-compatible "
    "providers answer with their own model, so the versions below are recorded and "
    "can be approved, but the base model answers every turn. Use the embedded "
    "llama.cpp model or Ray Serve to serve them."
)


def _back(target: str | None) -> str:
    """Back to the page the form was on: this console's adapter pages only."""
    url = safe_next(target, "/admin/adapters")
    if url == "/admin/adapters" or url.startswith(("/admin/adapters?", "/admin/adapters/")):
        return url
    return "/admin/adapters"


async def _page_context(
    registry: AdapterRegistry, before: int | None, days: float
) -> dict[str, Any]:
    return {
        "pointer": await registry.pointer(),
        "versions": await registry.page(before, PAGE, None),
        "comparison": await registry.compare(days),
        "changes": await registry.changes(CHANGES),
        "before": before,
        "days": days,
        "no_adapters": NO_ADAPTERS,
    }


@router.get("")
async def adapters_page(
    request: Request, user: WebAdmin, registry: Registry, before: Before = None, days: Days = 30.0
) -> HTMLResponse:
    context = await _page_context(registry, before, days)
    return render(request, "admin_adapters.html", {"user": user, **context})


@router.get("/{version_id}")
async def adapter_page(
    request: Request, user: WebAdmin, registry: Registry, version_id: VersionId
) -> HTMLResponse:
    version = await registry.get(version_id)  # NotFound: the error page, 404
    context = {"user": user, "v": version, "pointer": await registry.pointer()}
    return render(request, "admin_adapter.html", context)


def _serving(p: PointerOut) -> str:
    now = f"version {p.active.id} serves" if p.active else "the base model answers"
    if p.canary:
        now += f" (canary: version {p.canary.id}, {p.canary_share:.0%} of turns)"
    return now


async def _act(
    request: Request,
    user: User,
    registry: AdapterRegistry,
    action: Callable[[], Awaitable[Any]],
    done: Callable[[Any], str],
    back: str | None,
) -> Response:
    """Do ``action``; back to the page with ``done(result)`` as the flash, or this
    console's page with the registry's refusal shown on it (and its status: 409, 404,
    422...)."""
    try:
        result = await action()
    except DomainError as exc:
        context = await _page_context(registry, None, 30.0)
        context.update(user=user, error=exc.detail)
        return render(request, "admin_adapters.html", context, status_code=exc.status)
    return redirect(_back(back), flash=done(result))


def _share(text: str) -> float | None:
    """A fraction ("0.1") or a percentage ("10%"); blank: the server's default."""
    text = text.strip()
    if not text:
        return None  # MONGARS_TRAINING__CANARY_SHARE
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise InvalidInput(f"canary share {text!r} is not a number") from None
    return value / 100 if text.endswith("%") else value


# The fixed paths first: "/pointer/..." and ".../canary" would match "/{id}/{decision}".
@router.post("/pointer/{move}", dependencies=[CsrfChecked])
async def move_pointer(
    request: Request,
    user: WebAdmin,
    registry: Registry,
    move: Literal["rollback", "deactivate", "canary-stop"],
    note: Note = "",
    back: Back = None,
) -> Response:
    actor = user.username
    moves = {
        "rollback": (lambda: registry.rollback(actor, note), "Rolled back"),
        "deactivate": (lambda: registry.deactivate(actor, note), "Adapters deactivated"),
        "canary-stop": (lambda: registry.stop_canary(actor, note), "Canary stopped"),
    }
    action, label = moves[move]
    return await _act(
        request, user, registry, action, lambda p: f"{label}: {_serving(p)} now.", back
    )


@router.post("/{version_id}/canary", dependencies=[CsrfChecked])
async def start_canary(
    request: Request,
    user: WebAdmin,
    registry: Registry,
    version_id: VersionId,
    share: Share = "",
    note: Note = "",
    back: Back = None,
) -> Response:
    async def action() -> PointerOut:
        return await registry.start_canary(version_id, _share(share), user.username, note)

    return await _act(
        request, user, registry, action, lambda p: f"Canary started: {_serving(p)}.", back
    )


@router.post("/{version_id}/{decision}", dependencies=[CsrfChecked])
async def decide(
    request: Request,
    user: WebAdmin,
    registry: Registry,
    version_id: VersionId,
    decision: Literal["approve", "reject", "activate"],
    note: Note = "",
    back: Back = None,
) -> Response:
    actor = user.username
    decisions = {
        "approve": (lambda: registry.approve(version_id, actor, note), "approved"),
        "reject": (lambda: registry.reject(version_id, actor, note), "rejected"),
        "activate": (lambda: registry.activate(version_id, actor, note), "activated"),
    }
    action, verb = decisions[decision]

    def done(result: Any) -> str:
        extra = f": {_serving(result)} now" if isinstance(result, PointerOut) else ""
        return f"Adapter version {version_id} {verb}{extra}."

    return await _act(request, user, registry, action, done, back)
