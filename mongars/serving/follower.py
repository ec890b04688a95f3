"""A replica follows the active adapter: it reads ``adapter_manifest.json`` at start,
then checks it (one ``stat``) every ``interval_s`` and before requests that do not name
an adapter, and swaps in place when it changed (no redeploy, no restart)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from mongars.adapters.store import MANIFEST, read_manifest, root
from mongars.llm.llamacpp import LlamaCppProvider

log = logging.getLogger(__name__)
INTERVAL_S = 1.0


class AdapterFollower:
    def __init__(
        self, provider: LlamaCppProvider, data_dir: Path, interval_s: float = INTERVAL_S
    ) -> None:
        self.provider, self.data_dir, self.interval_s = provider, data_dir, interval_s
        self.current: str | None = None  # the manifest's active sha256
        self._seen: tuple[int, int] | None = None  # the manifest's (mtime_ns, size)
        self._task: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            self._watch()
        )

    async def check(self) -> str | None:
        """The active sha256; re-read (and swapped to) when the manifest changed."""
        try:
            st = (root(self.data_dir) / MANIFEST).stat()
            seen: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            seen = None
        if seen == self._seen:
            return self.current
        self._seen = seen
        current = read_manifest(self.data_dir).get("current")
        sha = current.get("sha256") if isinstance(current, dict) else None
        if sha != self.current:
            self.current = sha if isinstance(sha, str) else None
            try:
                took = await self.provider.use_adapter(self.current)
                log.info("replica now serves adapter %s (%.3f s)", self.current, took)
            except Exception:  # a damaged file: requests that need it get the error
                log.exception("could not load adapter %s", self.current)
        return self.current

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            with contextlib.suppress(Exception):
                await self.check()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
