"""What the routes call: the Store actor (and, later, the pipeline actors) by handle."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ray

from engine.clock import Clock
from engine.errors import Retryable
from engine.settings import Settings


@dataclass(frozen=True)
class ComponentStatus:
    ok: bool
    detail: Any
    checked_at: datetime


class ActorBackend:
    """Talks to the actors through handles; never blocks the event loop on `ray.get`."""

    def __init__(self, resolve_store: Callable[[], Any], clock: Clock, settings: Settings) -> None:
        self._resolve_store = resolve_store
        self._store: Any = None
        self.clock = clock
        self.timeout_s = settings.health_timeout_s
        self.jwt_secret = settings.jwt_secret.get_secret_value()
        self.started_at = clock.now()

    @property
    def store(self) -> Any:
        """The Store actor's handle, looked up again after the actor it named died."""
        if self._store is None:
            self._store = self._resolve_store()
        return self._store

    def forget_store(self) -> None:
        self._store = None

    async def call_store(self, method: str, *args: Any) -> Any:
        """Call the Store actor; if it is gone or restarting, answer `Retryable` (503)."""
        try:
            return await getattr(self.store, method).remote(*args)
        except (ray.exceptions.RayActorError, ValueError) as exc:
            self.forget_store()
            raise Retryable(f"the store is unavailable: {type(exc).__name__}") from None

    async def call_analytics(self, method: str, *args: Any) -> Any:
        """Call the Analytics actor (queries over the Parquet event log); 503 if it is down."""
        try:
            from actors.system import ANALYTICS_NAME, named

            handle = named(ANALYTICS_NAME)
            return await getattr(handle, method).remote(*args)
        except (ray.exceptions.RayActorError, ValueError) as exc:
            raise Retryable(f"analytics are unavailable: {type(exc).__name__}") from None

    async def health(self) -> dict[str, ComponentStatus]:
        ray_status = await self._ray_status()
        api = ComponentStatus(True, {"pid": os.getpid()}, self.clock.now())
        try:
            await asyncio.wait_for(self.store.ping.remote(), self.timeout_s)
            report = await asyncio.wait_for(self.store.health.remote(), self.timeout_s)
        except Exception as exc:  # any failure to answer means the component is down
            if isinstance(exc, ray.exceptions.RayActorError | ValueError):
                self.forget_store()
            down = ComponentStatus(False, f"{type(exc).__name__}: {exc}", self.clock.now())
            return {"api": api, "ray": ray_status, "store": down, "event_log": down}
        now = self.clock.now()
        return {
            "api": api,
            "ray": ray_status,
            "store": ComponentStatus(bool(report["store"]["ok"]), report["store"], now),
            "event_log": ComponentStatus(bool(report["event_log"]["ok"]), report["event_log"], now),
        }

    async def _ray_status(self) -> ComponentStatus:
        try:
            resources = await asyncio.wait_for(
                asyncio.to_thread(ray.cluster_resources), self.timeout_s
            )
            detail = {"cpus": resources.get("CPU", 0.0), "nodes": _count_nodes(resources)}
            return ComponentStatus(ray.is_initialized(), detail, self.clock.now())
        except Exception as exc:
            return ComponentStatus(False, f"{type(exc).__name__}: {exc}", self.clock.now())


def _count_nodes(resources: dict[str, float]) -> int:
    return sum(1 for key in resources if key.startswith("node:") and "internal" not in key)
