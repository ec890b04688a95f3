"""Console page for the learning loop (admins): datasets and training runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mongars.deps import RuntimeDep
from mongars.rate_limits import ConsoleTrainingLimit
from mongars.training.endpoints import TrainingDep
from mongars.training.schemas import DatasetPolicy, RunCreate
from mongars.web.render import HtmlRoute, redirect, render
from mongars.web.session import CsrfChecked, WebAdmin

router = APIRouter(prefix="/admin/training", route_class=HtmlRoute, include_in_schema=False)


@router.get("")
async def training_page(
    request: Request, user: WebAdmin, runtime: RuntimeDep, system: TrainingDep
) -> HTMLResponse:
    datasets = await system.datasets.page(None, 50)
    runs = await system.runs.page(None, 50)
    active = any(r.status in ("queued", "running", "pausing") for r in runs.items)
    return render(
        request,
        "admin_training.html",
        {
            "user": user,
            "datasets": datasets.items,
            "runs": runs.items,
            "active": active,
            "defaults": runtime.settings.training,
        },
    )


@router.post("/datasets", dependencies=[CsrfChecked, ConsoleTrainingLimit])
async def curate(
    user: WebAdmin,
    training: TrainingDep,
    min_confidence: Annotated[float, Form(ge=0, le=1)],
    include_unrated: Annotated[bool, Form()] = False,
) -> Response:
    policy = DatasetPolicy(min_confidence=min_confidence, include_unrated=include_unrated)
    d = await training.datasets.curate(policy, user.id, user.username)
    return redirect("/admin/training", flash=f"Dataset {d.id}: {d.status}, {d.records} records.")


@router.post("/datasets/{dataset_id}/delete", dependencies=[CsrfChecked])
async def delete_dataset(dataset_id: str, user: WebAdmin, training: TrainingDep) -> Response:
    await training.datasets.delete(dataset_id, user.username)
    return redirect("/admin/training", flash=f"Dataset {dataset_id} deleted.")


@router.post("/runs", dependencies=[CsrfChecked, ConsoleTrainingLimit])
async def start_run(
    user: WebAdmin,
    training: TrainingDep,
    dataset_id: Annotated[str, Form(max_length=32)],
    max_steps: Annotated[int, Form(ge=1, le=100_000)],
) -> Response:
    run = await training.runs.start(
        RunCreate(dataset_id=dataset_id, max_steps=max_steps), user.id, user.username
    )
    return redirect("/admin/training", flash=f"Training run {run.id} started.")


@router.post("/runs/{run_id}/{action}", dependencies=[CsrfChecked])
async def run_action(run_id: str, action: str, user: WebAdmin, training: TrainingDep) -> Response:
    runs = training.runs
    if action == "pause":
        await runs.pause(run_id, user.username)
    elif action == "resume":
        await runs.resume(run_id, user.username)
    elif action == "cancel":
        await runs.cancel(run_id, user.username)
    else:
        return redirect("/admin/training", flash=f"Unknown action {action}.")
    return redirect("/admin/training", flash=f"Run {run_id}: {action} requested.")
