"""Declarative base shared by every feature's tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def import_all_models() -> type[Base]:
    """Import every feature's tables so Base.metadata is complete (Alembic, tests)."""
    from mongars.adapters import models as _adapters  # noqa: F401
    from mongars.apikeys import models as _apikeys  # noqa: F401
    from mongars.auth import models as _auth  # noqa: F401
    from mongars.conversation import models as _conversation  # noqa: F401
    from mongars.evolution import models as _evolution  # noqa: F401
    from mongars.feedback import models as _feedback  # noqa: F401
    from mongars.memory import models as _memory  # noqa: F401
    from mongars.peers import models as _peers  # noqa: F401
    from mongars.persona import models as _persona  # noqa: F401
    from mongars.research import models as _research  # noqa: F401
    from mongars.scheduler import models as _scheduler  # noqa: F401
    from mongars.training import models as _training  # noqa: F401

    return Base
