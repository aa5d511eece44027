"""Shared services: started once however many ask, reference-counted,
stopped in dependency order.

::

    from contextlib import asynccontextmanager
    from async_reduce.services import Services

    @asynccontextmanager
    async def database(dsn: str):
        db = await connect(dsn)
        try:
            yield db
        finally:
            await db.close()

    async with Services() as services:
        async with services.use(database, "postgres://db/app") as db:
            ...

See :class:`Services` for the full contract.
"""

from ._errors import (
    ServiceBroken,
    ServiceCycleError,
    ServiceError,
    ServiceNotHeld,
    ServicesClosed,
)
from ._events import (
    ServiceEvent,
    ServiceFailed,
    ServiceLingering,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStopped,
    StopReason,
)
from ._scope import Services
from ._stats import ServicesStatistics, ServiceState, ServiceStatistics
from ._use import ServiceUse

__all__ = [
    "ServiceBroken",
    "ServiceCycleError",
    "ServiceError",
    "ServiceEvent",
    "ServiceFailed",
    "ServiceLingering",
    "ServiceNotHeld",
    "ServiceStartFailed",
    "ServiceStarted",
    "ServiceState",
    "ServiceStatistics",
    "ServiceStopped",
    "ServiceUse",
    "Services",
    "ServicesClosed",
    "ServicesStatistics",
    "StopReason",
]
