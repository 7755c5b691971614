"""The Store as a Ray actor: concurrent callers, restart, event export, reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.errors import Rejected
from storage.eventlog import EventLog, events_sql
from storage.writes import WriteResult
from tests.integration.conftest import RAY_TIMEOUT_S, RaySession
from tests.integration.storage_helpers import audit_request


def wait_until_restarted(handle: Any, old_pid: int) -> None:
    """After a kill, calls fail as 'unavailable' until a new process runs the actor."""
    import time

    import ray

    deadline = time.monotonic() + RAY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if ray.get(handle.process_id.remote(), timeout=RAY_TIMEOUT_S) != old_pid:
                return
            time.sleep(0.2)
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError):
            time.sleep(0.2)
    raise AssertionError("the Store actor did not come back")


@pytest.fixture
def store_actor(ray_session: RaySession, tmp_path: Path) -> Any:
    import ray

    from actors.store import StoreActor

    handle = (
        ray.remote(StoreActor)
        .options(num_cpus=0, max_restarts=1, max_concurrency=1000)
        .remote(str(tmp_path / "t.duckdb"), str(tmp_path / "events"), export_interval_s=3600)
    )
    ray.get(handle.start.remote(), timeout=RAY_TIMEOUT_S)
    yield handle
    ray.get(handle.stop.remote(), timeout=RAY_TIMEOUT_S)
    ray.kill(handle)


def test_64_concurrent_callers_with_one_bad_request(store_actor: Any, tmp_path: Path) -> None:
    import ray

    requests = [audit_request(n=i) for i in range(64)]
    requests[40] = audit_request(actor=None, n=40)
    refs = [store_actor.write.remote(r) for r in requests]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=RAY_TIMEOUT_S)
    assert len(ready) == 64
    outcomes: list[Any] = []
    for ref in refs:  # each ref is already resolved; this collects per-ref outcomes
        try:
            outcomes.append(ray.get(ref, timeout=1))
        except Rejected as exc:
            outcomes.append(exc)
    assert [i for i, o in enumerate(outcomes) if not isinstance(o, WriteResult)] == [40]
    exported = ray.get(store_actor.export_now.remote(), timeout=RAY_TIMEOUT_S)
    assert exported == 63
    table = ray.get(
        store_actor.query.remote("SELECT count(*) AS n FROM audit_log"), timeout=RAY_TIMEOUT_S
    )
    assert table.column("n")[0].as_py() == 63
    landed = duckdb.sql(f"SELECT count(*) FROM ({events_sql(str(tmp_path / 'events/*.parquet'))})")
    assert landed.fetchall() == [(63,)]


def test_a_killed_store_restarts_reopens_its_file_and_keeps_what_it_acknowledged(
    store_actor: Any, tmp_path: Path
) -> None:
    import ray

    first = ray.get([store_actor.write.remote(audit_request(n=i)) for i in range(10)], timeout=60)
    assert len(first) == 10
    old_pid = ray.get(store_actor.process_id.remote(), timeout=RAY_TIMEOUT_S)
    ray.kill(store_actor, no_restart=False)
    wait_until_restarted(store_actor, old_pid)
    after = ray.get(store_actor.write.remote(audit_request(n=99)), timeout=RAY_TIMEOUT_S)
    assert after.ids == (11,)
    health = ray.get(store_actor.health.remote(), timeout=RAY_TIMEOUT_S)
    assert health["store"]["ok"] and health["store"]["last_seq"] == 11
    ray.get(store_actor.export_now.remote(), timeout=RAY_TIMEOUT_S)
    assert EventLog(tmp_path / "events").landed_upto() == 11
