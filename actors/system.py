"""The one place where actor classes become Ray actors, and how the system starts.

Actors that mostly wait ask for `num_cpus=0`, so a second deployment or task never hangs
waiting for a CPU on a small machine. The Store is pinned to the head node: DuckDB is a
single-writer file on that node's disk.
"""

from __future__ import annotations

from typing import Any

import ray

from actors.store import StoreActor
from engine.settings import Settings

NAMESPACE = "tandem"
STORE_NAME = "tandem-store"
HEAD_NODE_RESOURCE = "node:__internal_head__"

RemoteStoreActor: Any = ray.remote(StoreActor)


def start_store(settings: Settings, timeout_s: float = 60.0) -> Any:
    """Create (or find) the named Store actor and wait until its database is open."""
    handle = RemoteStoreActor.options(
        name=STORE_NAME,
        namespace=NAMESPACE,
        get_if_exists=True,
        num_cpus=0,
        max_restarts=-1,
        max_concurrency=1000,
        resources={HEAD_NODE_RESOURCE: 0.001},
    ).remote(
        str(settings.db_path),
        str(settings.events_dir),
        max_batch=settings.store_max_batch,
        export_interval_s=settings.export_interval_s,
        export_max_rows=settings.export_max_rows,
    )
    ray.get(handle.start.remote(), timeout=timeout_s)
    return handle


def store_handle() -> Any:
    return ray.get_actor(STORE_NAME, namespace=NAMESPACE)


def stop_store(handle: Any, timeout_s: float = 30.0) -> None:
    """Drain the Store's queue, land the event log, close the database."""
    ray.get(handle.stop.remote(), timeout=timeout_s)
