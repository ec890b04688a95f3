"""``sleep_time_compute.*`` events: to every admin's sockets, through the event bus."""

from __future__ import annotations

import logging
import time
from typing import Any

from mongars.auth.repository import UserRepository
from mongars.db.engine import unit_of_work
from mongars.runtime import Runtime

log = logging.getLogger(__name__)


async def notify_admins(runtime: Runtime, kind: str, **data: Any) -> None:
    """Best effort: an event that cannot be delivered is logged, never fatal to a job."""
    event = {"type": f"sleep_time_compute.{kind}", "notice": True, "ts": time.time(), **data}
    log.info("%s %s", event["type"], data)
    try:
        async with unit_of_work(runtime.sessions) as session:
            admins = await UserRepository(session).admin_ids()
        for admin in admins:
            await runtime.bus.signal(admin, event)
    except Exception:
        log.warning("could not deliver %s", event["type"], exc_info=True)
