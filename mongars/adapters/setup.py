"""The registry for a running app: completed runs register as candidates, and the
active adapter is loaded into this process's model before the first answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mongars.adapters.registry import AdapterRegistry

if TYPE_CHECKING:
    from mongars.runtime import Runtime


async def start_adapters(runtime: Runtime) -> AdapterRegistry:
    registry = AdapterRegistry(runtime.sessions, runtime.settings, runtime.llm)
    if runtime.training is not None:
        runtime.training.supervisor.on_completed.append(registry.register_run)
    await registry.choose("")  # reads the pointer; loads the active adapter here
    return registry
