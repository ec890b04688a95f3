"""The adapter registry: versions from completed runs, the approval gate, the one
active pointer (activate, rollback, deactivate), the canary, and which adapter each
answer uses (``choose``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.adapters import store
from mongars.adapters.errors import AdapterDamaged, AdapterNotFound, AdapterStateConflict
from mongars.adapters.figures import compare_versions
from mongars.adapters.gate import gate_reasons
from mongars.adapters.models import AdapterPointer, AdapterVersion
from mongars.adapters.repository import AdapterRepository
from mongars.adapters.schemas import (
    AdapterOut,
    AdapterPage,
    ChangeOut,
    Comparison,
    PointerOut,
)
from mongars.adapters.selection import AdapterSelector, Choice
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import InvalidInput
from mongars.llm.base import LLMProvider
from mongars.settings import Settings
from mongars.training import spec as run_spec
from mongars.training.repository import TrainingRepository

log = logging.getLogger(__name__)


class AdapterRegistry:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        llm: LLMProvider | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.sessions, self.settings, self.llm, self.clock = sessions, settings, llm, clock
        self.selector = AdapterSelector(sessions, llm, clock)

    @property
    def data_dir(self) -> Any:
        return self.settings.data_dir

    # -- registering ------------------------------------------------------------

    async def register_run(self, run_id: str, actor: str = "system") -> AdapterOut:
        """A completed generation (sft) run's adapter as a candidate (idempotent: the
        same file registers once). It goes live by itself only when every gate passes
        and ``MONGARS_TRAINING__AUTO_ACTIVATE`` is true."""
        async with unit_of_work(self.sessions) as session:
            run = await TrainingRepository(session).run(run_id)
        if run is None:
            raise AdapterNotFound(f"no training run {run_id}")
        if run.status != "completed" or run.objective != "sft" or not run.adapter_sha256:
            raise AdapterStateConflict(
                f"run {run_id} has no adapter for generation (status {run.status}, objective "
                f"{run.objective}): only completed sft runs do"
            )
        source = run_spec.runs_root(self.settings) / run_id / store.FILE
        if not source.is_file():
            raise AdapterDamaged(f"run {run_id}'s adapter file {source} is missing")
        sha, size = await asyncio.to_thread(store.import_file, self.data_dir, source)
        if sha != run.adapter_sha256:
            raise AdapterDamaged(
                f"run {run_id}'s adapter file is damaged: sha256 {sha}, the run recorded "
                f"{run.adapter_sha256}"
            )
        confidences, flagged = await self._dataset_figures(run.dataset_id)
        gate = gate_reasons(
            run.metrics or {},
            self.settings.training,
            dataset_confidences=confidences,
            dataset_flagged=flagged or bool((run.metrics or {}).get("dataset_flagged")),
        )
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            existing = await repo.by_sha(sha)
            if existing is not None:
                return self._out(existing, None)
            version = await repo.add(
                AdapterVersion(
                    sha256=sha,
                    size_bytes=size,
                    run_id=run.id,
                    dataset_id=run.dataset_id,
                    dataset_sha256=run.dataset_sha256,
                    base_model=self._base_model(run),
                    metrics=dict(run.metrics or {}),
                    gate=gate,
                    state="candidate",
                )
            )
            codes = ", ".join(r["code"] for r in gate) or "none"
            await repo.audit(actor, "adapter.register", f"adapter:{version.id}", f"gate: {codes}")
            version_id = version.id
        log.info("adapter version %s registered from run %s (gate: %s)", version_id, run_id, codes)
        if not gate and self.settings.training.auto_activate:
            await self.approve(version_id, "policy", "every gate passed (auto_activate)")
            await self.activate(version_id, "policy", "every gate passed (auto_activate)")
        return await self.get(version_id)

    async def register_replica(
        self, source: Path, manifest: dict[str, Any], node_id: str, actor: str
    ) -> AdapterOut:
        """An adapter replicated from a paired peer (docs/peers.md): stored like a local
        one, always a candidate that needs this node's approval (gate ``replicated``)."""
        sha, size = await asyncio.to_thread(store.import_file, self.data_dir, source)
        if sha != manifest["adapter"]:
            raise AdapterDamaged(f"replicated file's sha256 {sha} is not {manifest['adapter']}")
        gate = [
            {
                "code": "replicated",
                "detail": f"replicated from peer {node_id}: this node's admin decides",
                "figure": node_id,
                "limit": None,
            }
        ]
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            existing = await repo.by_sha(sha)
            if existing is not None:
                return self._out(existing, None)
            version = await repo.add(
                AdapterVersion(
                    sha256=sha,
                    size_bytes=size,
                    run_id=f"peer:{node_id}"[:32],
                    dataset_id="",
                    dataset_sha256="",
                    base_model=str(manifest.get("base_model", ""))[:200],
                    metrics=dict(manifest.get("metrics") or {}),
                    gate=gate,
                    state="candidate",
                )
            )
            await repo.audit(actor, "adapter.replicate", f"adapter:{version.id}", node_id)
            version_id = version.id
        return await self.get(version_id)

    async def has(self, sha256: str) -> bool:
        async with unit_of_work(self.sessions) as session:
            return await AdapterRepository(session).by_sha(sha256) is not None

    async def shareable(self) -> list[AdapterVersion]:
        """Versions this node vouches for (approved, active or retired): what it offers
        to same-owner peers."""
        async with unit_of_work(self.sessions) as session:
            rows = await AdapterRepository(session).by_states(("approved", "active", "retired"))
            for row in rows:
                session.expunge(row)
            return rows

    def _base_model(self, run: Any) -> str:
        model = (run.params or {}).get("model_path") or self.settings.llm.model_path
        return str(model or self.settings.llm.embedded_model)[:200]

    async def _dataset_figures(self, dataset_id: str) -> tuple[list[float] | None, bool | None]:
        """The dataset's answer confidences (manifest) and whether it is flagged;
        (None, None) when it is gone."""
        from mongars.training.datasets import DatasetService

        datasets = DatasetService(self.sessions, self.settings, "")
        try:
            out = await datasets.get(dataset_id)
            manifest = json.loads((datasets.folder(dataset_id) / "manifest.json").read_text())
        except Exception:
            return None, None
        sources = manifest.get("record_sources") or []
        confidences = [
            float(s["confidence"])
            for s in sources
            if isinstance(s, dict) and isinstance(s.get("confidence"), int | float)
        ]
        return confidences, out.flagged

    # -- reading ----------------------------------------------------------------

    async def page(self, before: int | None, limit: int, state: str | None) -> AdapterPage:
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            rows = await repo.page(before, limit + 1, state)
            pointer = await repo.pointer()
            items = [self._out(v, pointer) for v in rows[:limit]]
        return AdapterPage(
            items=items, next_before=rows[limit - 1].id if len(rows) > limit else None
        )

    async def get(self, version_id: int) -> AdapterOut:
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            version = await repo.version(version_id)
            if version is None:
                raise AdapterNotFound(f"no adapter version {version_id}")
            return self._out(version, await repo.pointer())

    async def pointer(self) -> PointerOut:
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            p = await repo.pointer()
            found = await repo.versions({i for i in (p.active_id, p.canary_id) if i is not None})
            return PointerOut(
                active=self._out(found[p.active_id], p) if p.active_id in found else None,
                canary=self._out(found[p.canary_id], p) if p.canary_id in found else None,
                canary_share=p.canary_share if p.canary_id else 0.0,
                generation=p.generation,
                updated_at=p.updated_at,
                provider_loads_adapters=self.loads_adapters,
            )

    async def changes(self, limit: int, before: int | None = None) -> list[ChangeOut]:
        async with unit_of_work(self.sessions) as session:
            rows = await AdapterRepository(session).changes(limit, before)
            return [ChangeOut.model_validate(r, from_attributes=True) for r in rows]

    @property
    def loads_adapters(self) -> bool:
        return bool(self.llm is not None and self.llm.loads_adapters)

    def _out(self, v: AdapterVersion, pointer: AdapterPointer | None) -> AdapterOut:
        out = AdapterOut.model_validate(v, from_attributes=True)
        out.canary = pointer is not None and pointer.canary_id == v.id
        return out

    # -- decisions --------------------------------------------------------------

    async def approve(self, version_id: int, actor: str, note: str = "") -> AdapterOut:
        return await self._decide(version_id, actor, note, "approved", {"candidate"})

    async def reject(self, version_id: int, actor: str, note: str = "") -> AdapterOut:
        return await self._decide(
            version_id, actor, note, "rejected", {"candidate", "approved", "retired"}
        )

    async def _decide(
        self, version_id: int, actor: str, note: str, state: str, allowed: set[str]
    ) -> AdapterOut:
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            version = await self._find(repo, version_id)
            if version.state not in allowed:
                hint = " (roll back or deactivate it first)" if version.state == "active" else ""
                raise AdapterStateConflict(
                    f"adapter version {version_id} is {version.state}: it cannot be {state}{hint}"
                )
            version.state, version.note = state, note
            version.decided_by, version.decided_at = actor[:64], utcnow()
            if state == "rejected" and pointer.canary_id == version_id:
                await self._set_canary(repo, pointer, None, 0.0, actor, "rejected")
            await repo.audit(
                actor,
                f"adapter.{state[:-1] if state.endswith('ed') else state}",
                f"adapter:{version_id}",
                note[:500],
            )
            out = self._out(version, pointer)
        self._invalidate()
        return out

    async def activate(self, version_id: int, actor: str, note: str = "") -> PointerOut:
        """An approved (or retired) version serves from now on, in every process."""
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            version = await self._find(repo, version_id)
            if version.state == "active":
                raise AdapterStateConflict(f"adapter version {version_id} is already active")
            if version.state not in ("approved", "retired"):
                raise AdapterStateConflict(
                    f"adapter version {version_id} is {version.state}: only an approved "
                    "version may serve (approve it first)"
                )
            await self._check_file(version)
            await self._point(repo, pointer, version, "activate", actor, note)
        return await self._changed()

    async def rollback(self, actor: str, note: str = "") -> PointerOut:
        """Back to the version that was active before the current one was activated
        (the base model when there was none). Nothing is deleted."""
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            if pointer.active_id is None:
                raise AdapterStateConflict("no adapter is active: there is nothing to roll back")
            activation = await repo.last_activation_of(pointer.active_id)
            target_id = activation.from_id if activation is not None else None
            target = await repo.version(target_id) if target_id is not None else None
            if target is not None and target.state in ("rejected", "pruned"):
                raise AdapterStateConflict(
                    f"the previous version {target.id} was {target.state} since: activate "
                    "another version or deactivate adapters"
                )
            if target is not None:
                await self._check_file(target)
            await self._point(repo, pointer, target, "rollback", actor, note)
        return await self._changed()

    async def deactivate(self, actor: str, note: str = "") -> PointerOut:
        """The base model answers again (the canary stops too)."""
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            if pointer.active_id is None and pointer.canary_id is None:
                raise AdapterStateConflict("no adapter is active")
            if pointer.canary_id is not None:
                await self._set_canary(repo, pointer, None, 0.0, actor, note)
            await self._point(repo, pointer, None, "deactivate", actor, note)
        return await self._changed()

    async def start_canary(
        self, version_id: int, share: float | None, actor: str, note: str = ""
    ) -> PointerOut:
        """A share of turns answered by ``version_id`` (a candidate included: starting a
        canary is an admin's decision, audited), the rest by the active version."""
        share = self.settings.training.canary_share if share is None else share
        if not 0.0 < share < 1.0:
            raise InvalidInput("canary share must be between 0 and 1 (exclusive)")
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            version = await self._find(repo, version_id)
            if version.state not in ("candidate", "approved", "retired"):
                raise AdapterStateConflict(
                    f"adapter version {version_id} is {version.state}: it cannot be a canary"
                )
            await self._check_file(version)
            await self._set_canary(repo, pointer, version, share, actor, note)
        return await self._changed()

    async def stop_canary(self, actor: str, note: str = "") -> PointerOut:
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            if pointer.canary_id is None:
                raise AdapterStateConflict("no canary is running")
            await self._set_canary(repo, pointer, None, 0.0, actor, note)
        return await self._changed()

    async def prune(self, keep: int, actor: str) -> list[int]:
        """Explicit pruning: delete the files of rejected versions and of retired ones
        beyond the newest ``keep`` retired; their rows and history stay (state
        ``pruned``). Active, canary, approved and candidate versions are never
        touched. The versions pruned."""
        async with unit_of_work(self.sessions) as session:
            repo = AdapterRepository(session)
            pointer = await repo.pointer(lock=True)
            retired = await repo.page(None, 10_000, "retired")
            doomed = retired[keep:] + await repo.page(None, 10_000, "rejected")
            pruned = [v for v in doomed if v.id not in (pointer.active_id, pointer.canary_id)]
            for version in pruned:
                version.state = "pruned"
            kept = await repo.live_shas()
            if pruned:
                ids = ", ".join(str(v.id) for v in pruned)
                await repo.audit(actor, "adapter.prune", "adapters", f"versions {ids}")
        await asyncio.to_thread(store.prune, self.data_dir, kept)
        return [v.id for v in pruned]

    async def _find(self, repo: AdapterRepository, version_id: int) -> AdapterVersion:
        version = await repo.version(version_id, lock=True)
        if version is None:
            raise AdapterNotFound(f"no adapter version {version_id}")
        return version

    async def _check_file(self, version: AdapterVersion) -> None:
        try:
            await asyncio.to_thread(store.verify, self.data_dir, version.sha256)
        except store.DamagedAdapter as exc:
            raise AdapterDamaged(f"adapter version {version.id} refused: {exc}") from exc

    async def _point(
        self,
        repo: AdapterRepository,
        pointer: AdapterPointer,
        version: AdapterVersion | None,
        action: str,
        actor: str,
        note: str,
    ) -> None:
        previous_id = pointer.active_id
        if previous_id is not None:
            previous = await repo.version(previous_id)
            if previous is not None and previous.state == "active":
                previous.state = "retired"
        if version is not None:
            version.state, version.activated_at = "active", utcnow()
            if pointer.canary_id == version.id:
                pointer.canary_id, pointer.canary_share = None, 0.0
        pointer.active_id = version.id if version is not None else None
        await repo.bump(pointer)
        to_id = version.id if version is not None else None
        await repo.record(action, previous_id, to_id, actor, note)
        await repo.audit(
            actor,
            f"adapter.{action}",
            f"adapter:{to_id or 'base'}",
            f"from {previous_id or 'base'}",
        )
        await self._write_manifest(repo, version)

    async def _set_canary(
        self,
        repo: AdapterRepository,
        pointer: AdapterPointer,
        version: AdapterVersion | None,
        share: float,
        actor: str,
        note: str,
    ) -> None:
        before = pointer.canary_id
        pointer.canary_id = version.id if version is not None else None
        pointer.canary_share = share if version is not None else 0.0
        await repo.bump(pointer)
        action = "canary_start" if version is not None else "canary_stop"
        to_id = version.id if version is not None else None
        await repo.record(action, before, to_id, actor, note)
        await repo.audit(actor, f"adapter.{action}", f"adapter:{to_id or before}", f"share {share}")

    async def _write_manifest(
        self, repo: AdapterRepository, current: AdapterVersion | None
    ) -> None:
        """The seed's ``adapter_manifest.json`` for tools and Ray replicas."""
        changes = await repo.changes(self.settings.training.manifest_history)
        found = await repo.versions({c.to_id for c in changes if c.to_id is not None})
        history = [
            {
                "action": c.action,
                "version": c.to_id,
                "sha256": found[c.to_id].sha256 if c.to_id in found else None,
                "from_version": c.from_id,
                "actor": c.actor,
                "at": c.at.isoformat(),
            }
            for c in changes
            if c.action in ("activate", "rollback", "deactivate")
        ]
        body = None
        if current is not None:
            body = {
                "version": current.id,
                "sha256": current.sha256,
                "path": str(store.adapter_path(self.data_dir, current.sha256)),
                "run_id": current.run_id,
                "base_model": current.base_model,
            }
        await asyncio.to_thread(store.write_manifest, self.data_dir, body, history)

    async def _changed(self) -> PointerOut:
        self._invalidate()
        await self.choose("")  # re-read now, and load the new active adapter here
        return await self.pointer()

    def _invalidate(self) -> None:
        self.selector.invalidate()

    # -- which adapter answers ---------------------------------------------------

    def active_sha(self) -> str | None:
        return self.selector.active_sha()

    async def choose(self, generation_id: str) -> Choice | None:
        """The adapter for one answer (selection.py); None: the base model."""
        return await self.selector.choose(generation_id)

    async def compare(self, days: float = 30.0) -> Comparison:
        """Per-version figures with 95 % intervals (figures.py)."""
        return await compare_versions(self.sessions, days)
