"""Engine 2 on real Ray + Serve + DuckDB: with variant B on, one alert gets its agents'
votes, a meta-decision, a shadow trade and an experiment record; Engine 1 trades the same
alert with the same order and fill; with the master flag turned off, nothing goes to B
once 5 s of clock time have passed.

The test runs its own clock, FeatureFlags actor and StrategyRouter (experiment
`itest-e2`, meta threshold 0 so that the panel's vote always trades) over the session's
Store, market data, agent actors and ShadowExecutor. The flags are changed through the
admin API and put back to their seeded values at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.tokens import Role, issue_token
from tests.integration.conftest import RAY_TIMEOUT_S, SIM_START, WEBHOOK_SECRET, RaySession

EXPERIMENT = "itest-e2"
SYMBOL = "SPY"
B_FLAGS = ("enable_variant_b", "enable_orb", "enable_strat", "enable_ttm", "enable_satyland")


@dataclass
class Rig:
    clock: Any
    flags: Any
    router: Any
    admin: dict[str, str]
    session: RaySession


def auth_of(rig: Rig, role: Role) -> dict[str, str]:
    return auth(rig.session, role)


def auth(session: RaySession, role: Role) -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, 'e2', role, datetime.now(UTC))}"}


def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
    import ray

    from actors.system import store_handle

    table = ray.get(store_handle().query.remote(sql, list(params)), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def set_b(api: httpx.Client, admin: dict[str, str], on: bool, split: int) -> None:
    changes = {name: {"enabled": on} for name in B_FLAGS}
    assert api.post("/feature-flags", json=changes, headers=admin).status_code == 200
    body = {"split_pct": split}
    assert api.put("/experiment-settings", json=body, headers=admin).status_code == 200


@pytest.fixture
def rig(api: httpx.Client, ray_session: RaySession) -> Iterator[Rig]:
    import ray

    from actors.clock import ClockActor, RemoteClock
    from actors.engine_two import RouterConfig, StrategyRouter
    from actors.flags import FeatureFlagsActor
    from actors.system import AGENT_PREFIX, MARKETDATA_NAME, SHADOW_NAME, all_agents, named
    from actors.system import store_handle as store
    from engine.meta import MetaConfig
    from engine.scenarios import get_scenario

    opts: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 100}
    clock = ray.remote(ClockActor).options(**opts).remote(SIM_START)
    flags = ray.remote(FeatureFlagsActor).options(**opts).remote(store(), RemoteClock(clock))
    agents = {a.name: named(AGENT_PREFIX + a.name) for a in all_agents()}
    config = RouterConfig(
        experiment_id=EXPERIMENT,
        unit="signal",
        first_session=get_scenario(ray_session.settings.scenario).start,
        meta=MetaConfig(threshold=0),
    )
    router = (
        ray.remote(StrategyRouter)
        .options(**opts)
        .remote(
            store(),
            named(MARKETDATA_NAME),
            flags,
            agents,
            named(SHADOW_NAME),
            RemoteClock(clock),
            config,
            ray.put,
        )
    )
    admin = auth(ray_session, Role.ADMIN)
    set_b(api, admin, on=True, split=100)
    try:
        yield Rig(clock, flags, router, admin, ray_session)
    finally:
        set_b(api, admin, on=False, split=0)
        for handle in (router, flags, clock):
            ray.kill(handle)


def post(api: httpx.Client, minute: int, **fields: Any) -> int:
    bar = SIM_START - timedelta(minutes=minute)
    body = {
        "symbol": SYMBOL,
        "direction": "short",  # the panel reads SPY short at 10:00 ET on 2013-10-07
        "timeframe": "5",
        "timestamp": bar.isoformat(),
        "strategy": "e2-itest",
        "secret": WEBHOOK_SECRET,
        **fields,
    }
    response = api.post("/webhook", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["signal_id"])


def route(rig: Rig, signal_id: int) -> str:
    import ray

    return str(ray.get(rig.router.route.remote(signal_id), timeout=RAY_TIMEOUT_S))


def settled(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_alert_in_b_gets_votes_a_decision_a_shadow_trade_and_an_experiment_record(
    api: httpx.Client, rig: Rig
) -> None:
    import ray

    signal_id = post(api, 5)
    assert route(rig, signal_id) == "B"
    (record,) = rows(
        "SELECT variant, unit, unit_key, split_pct FROM experiments "
        "WHERE experiment_id = ? AND signal_id = ?",
        EXPERIMENT,
        signal_id,
    )
    assert record == {
        "variant": "B",
        "unit": "signal",
        "unit_key": str(signal_id),
        "split_pct": 100,
    }
    key = f"{EXPERIMENT}/{signal_id}"
    kinds = [
        r["kind"] for r in rows("SELECT kind FROM events WHERE entity_id = ? ORDER BY seq", key)
    ]
    assert kinds[:2] == ["experiment_assigned", "enrichment_complete"]
    assert kinds[-1] == "meta_decided"
    voters = rows(
        "SELECT agent FROM agent_performance WHERE experiment_id = ? AND signal_id = ?",
        EXPERIMENT,
        signal_id,
    )
    assert {"technical", "context", "risk"} <= {v["agent"] for v in voters}  # core: always
    assert kinds.count("agent_decided") == len(voters)

    # threshold 0 and a bias that agrees (Technical, Context and Satyland read short): the
    # shadow executor opened a position
    (shadow,) = rows(
        "SELECT position_id, instrument, quantity, avg_price, status, agents FROM shadow_positions "
        "WHERE experiment_id = ? AND signal_id = ?",
        EXPERIMENT,
        signal_id,
    )
    assert shadow["status"] == "open"
    (entry,) = rows(
        "SELECT intent, price, quantity FROM shadow_trades WHERE position_id = ?",
        shadow["position_id"],
    )
    assert entry["intent"] == "entry"

    # parity: Engine 1 traded the same alert with the same order and the same fill
    live = settled(
        "Engine 1's fill",
        lambda: rows(
            "SELECT o.instrument, o.quantity, t.price FROM orders o JOIN trades t "
            "ON t.order_id = o.order_id WHERE o.signal_id = ? AND o.intent = 'entry'",
            signal_id,
        ),
    )
    assert live == [
        {"instrument": shadow["instrument"], "quantity": entry["quantity"], "price": entry["price"]}
    ]

    # an exit alert closes the shadow position (and Engine 1's), whatever its own variant
    exit_id = post(api, 4, direction="buy", market_position="flat", prev_market_position="short")
    route(rig, exit_id)
    (closed,) = rows(
        "SELECT status, exit_reason FROM shadow_positions WHERE position_id = ?",
        shadow["position_id"],
    )
    assert closed == {"status": "closed", "exit_reason": "exit_signal"}
    settled(
        "Engine 1 flat on SPY",
        lambda: (
            not rows(
                "SELECT 1 FROM positions WHERE symbol = ? AND status = 'open' AND engine = 'live'",
                SYMBOL,
            )
        ),
    )

    # the analytics API answers from the landed Parquet event log
    from actors.system import store_handle

    ray.get(store_handle().export_now.remote(), timeout=RAY_TIMEOUT_S)
    viewer = auth_of(rig, Role.VIEWER)
    assert api.get(f"/experiments/{EXPERIMENT}/results").status_code == 401
    listed = api.get("/experiments", params={"experiment_id": EXPERIMENT}, headers=viewer)
    assert listed.status_code == 200, listed.text
    assert [i["variant"] for i in listed.json()["items"] if i["signal_id"] == signal_id] == ["B"]
    results = api.get(f"/experiments/{EXPERIMENT}/results", headers=viewer)
    assert results.status_code == 200, results.text
    assert "B" in str(results.json())
    positions = api.get(
        "/shadow-positions",
        params={"experiment_id": EXPERIMENT, "status": "closed"},
        headers=viewer,
    ).json()["items"]
    assert any(p["signal_id"] == signal_id for p in positions), positions
    trades = api.get("/shadow-trades", params={"experiment_id": EXPERIMENT}, headers=viewer)
    assert trades.status_code == 200 and trades.json()["items"], trades.text
    agents = api.get(
        "/agents/performance", params={"experiment_id": EXPERIMENT}, headers=viewer
    ).json()["items"]
    assert {"technical", "context", "risk"} <= {a["agent"] for a in agents}, agents

    # the master flag off: once 5 s of clock time have passed, nothing goes to B
    change = api.patch(
        "/feature-flags/enable_variant_b", json={"enabled": False}, headers=rig.admin
    )
    assert change.status_code == 200
    ray.get(rig.clock.advance_to.remote(SIM_START + timedelta(seconds=5)), timeout=RAY_TIMEOUT_S)
    after = post(api, 3)
    assert route(rig, after) == "A"
    assert not rows("SELECT 1 FROM shadow_positions WHERE signal_id = ?", after)
    settled(
        "Engine 1 done with the last alert",
        lambda: rows(
            "SELECT 1 FROM positions p JOIN orders o ON p.entry_order_id = o.order_id "
            "WHERE o.signal_id = ?",
            after,
        ),
    )
    exit_again = post(api, 2, direction="buy", market_position="flat", prev_market_position="short")
    settled(
        "Engine 1 flat again",
        lambda: rows(
            "SELECT 1 FROM trades t JOIN orders o ON t.order_id = o.order_id WHERE o.signal_id = ?",
            exit_again,
        ),
    )
