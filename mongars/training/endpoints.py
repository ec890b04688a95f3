"""/api/v1/training: datasets and runs (admin only; docs/training.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse

from mongars.deps import AdminUser, RuntimeDep
from mongars.errors import FeatureDisabled
from mongars.rate_limits import TrainingLimit
from mongars.training.datasets import DatasetService
from mongars.training.runs import RunService
from mongars.training.schemas import (
    DatasetCreate,
    DatasetOut,
    DatasetPage,
    RunCreate,
    RunOut,
    RunPage,
)
from mongars.training.setup import TrainingSystem

router = APIRouter(prefix="/api/v1/training", tags=["training"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


def get_training(runtime: RuntimeDep) -> TrainingSystem:
    if runtime.training is None:
        raise FeatureDisabled("training is not available on this server")
    return runtime.training


TrainingDep = Annotated[TrainingSystem, Depends(get_training)]


def get_datasets(training: TrainingDep) -> DatasetService:
    return training.datasets


def get_runs(training: TrainingDep) -> RunService:
    return training.runs


DatasetsDep = Annotated[DatasetService, Depends(get_datasets)]
RunsDep = Annotated[RunService, Depends(get_runs)]


@router.post("/datasets", response_model=DatasetOut, status_code=201, dependencies=[TrainingLimit])
async def curate_dataset(
    admin: AdminUser, datasets: DatasetsDep, body: DatasetCreate | None = None
) -> DatasetOut:
    """Curate a dataset from consenting users' turns; quarantined when governance fails."""
    return await datasets.curate((body or DatasetCreate()).policy, admin.id, admin.username)


@router.get("/datasets", response_model=DatasetPage)
async def list_datasets(
    admin: AdminUser, datasets: DatasetsDep, cursor: Cursor = None, limit: Limit = 50
) -> DatasetPage:
    return await datasets.page(cursor, limit)


@router.get("/datasets/{dataset_id}", response_model=DatasetOut)
async def get_dataset(dataset_id: str, admin: AdminUser, datasets: DatasetsDep) -> DatasetOut:
    return await datasets.get(dataset_id)


@router.get("/datasets/{dataset_id}/export", response_class=FileResponse)
async def export_dataset(dataset_id: str, admin: AdminUser, datasets: DatasetsDep) -> FileResponse:
    """The dataset's records (JSONL, chat ``messages``), as a download."""
    path = await datasets.export_path(dataset_id)
    return FileResponse(
        path, media_type="application/x-ndjson", filename=f"mongars-dataset-{dataset_id}.jsonl"
    )


@router.delete("/datasets/{dataset_id}", status_code=204)
async def delete_dataset(dataset_id: str, admin: AdminUser, datasets: DatasetsDep) -> Response:
    await datasets.delete(dataset_id, admin.username)
    return Response(status_code=204)


@router.post("/runs", response_model=RunOut, status_code=202, dependencies=[TrainingLimit])
async def start_run(body: RunCreate, admin: AdminUser, runs: RunsDep) -> RunOut:
    """Start training in a child process; follow it with GET /runs/{id}."""
    return await runs.start(body, admin.id, admin.username)


@router.get("/runs", response_model=RunPage)
async def list_runs(
    admin: AdminUser, runs: RunsDep, cursor: Cursor = None, limit: Limit = 50
) -> RunPage:
    return await runs.page(cursor, limit)


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: str, admin: AdminUser, runs: RunsDep) -> RunOut:
    return await runs.get(run_id)


@router.post("/runs/{run_id}/pause", response_model=RunOut)
async def pause_run(run_id: str, admin: AdminUser, runs: RunsDep) -> RunOut:
    return await runs.pause(run_id, admin.username)


@router.post("/runs/{run_id}/resume", response_model=RunOut)
async def resume_run(run_id: str, admin: AdminUser, runs: RunsDep) -> RunOut:
    return await runs.resume(run_id, admin.username)


@router.post("/runs/{run_id}/cancel", response_model=RunOut)
async def cancel_run(run_id: str, admin: AdminUser, runs: RunsDep) -> RunOut:
    return await runs.cancel(run_id, admin.username)
